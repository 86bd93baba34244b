"""Paying at the sandbox gateway as the shop's pay page does: an attempt started through the services, its
charge at the sandbox, its notifications to the webhook."""

from urllib.parse import urlsplit

from django.conf import settings

from payments import services, signing
from payments.models import Payment, PaymentAttempt
from payments.sandbox import gateway
from payments.sandbox.models import SandboxNotification

WEBHOOK_URL = "/payments/webhooks/sandbox/"


def start_attempt(payment: Payment) -> PaymentAttempt:
    """A new sandbox attempt, as choosing the sandbox on the payment page starts it."""
    return services.attempt_start(
        payment_reference=payment.reference, provider_name="sandbox", method="page", client_ip="127.0.0.1"
    )


def open_attempt(payment: Payment) -> PaymentAttempt:
    """The payment's latest open sandbox attempt with its page at the sandbox, started when there is none."""
    attempt = (
        payment.attempts.filter(provider="sandbox", status=PaymentAttempt.Status.OPEN)
        .exclude(redirect_url="")
        .order_by("-created_at", "-pk")
        .first()
    )
    return attempt or start_attempt(payment)


def current_attempt(payment: Payment) -> PaymentAttempt:
    """The attempt a notification about this payment names: its latest, whatever became of it, or a new one."""
    return payment.attempts.order_by("-created_at", "-pk").first() or start_attempt(payment)


def gateway_path(payment: Payment) -> str:
    """The path of the sandbox's hosted page for the payment's open attempt."""
    return urlsplit(open_attempt(payment).redirect_url).path


def charge_reference(payment: Payment) -> str:
    """The sandbox's reference of the charge of the payment's open attempt (its page's last path segment)."""
    return charge_of(open_attempt(payment))


def charge_of(attempt: PaymentAttempt) -> str:
    """The sandbox's reference of an attempt's charge, whatever became of the attempt since (a QR attempt of the
    tests' own rail holds the sandbox page's URL as its code's text)."""
    return urlsplit(attempt.redirect_url or attempt.qr_text).path.rstrip("/").rsplit("/", 1)[1]


def deliver(client, event_type: str):
    """Deliver the sandbox's latest notification of this type to the webhook, signed, as its task would."""
    body = SandboxNotification.objects.filter(type=event_type).latest("pk").body.encode()
    signature = signing.sign(settings.SANDBOX_WEBHOOK_SECRET, body)
    response = client.post(WEBHOOK_URL, body, content_type="application/json", HTTP_SANDBOX_SIGNATURE=signature)
    assert response.status_code == 200, response.json()
    return response


def pay_at_gateway(client, payment: Payment):
    """The customer pays on the sandbox's page and its success notification reaches the webhook."""
    gateway.charge_decide(charge_reference=charge_reference(payment), pay=True)
    return deliver(client, "payment.succeeded")
