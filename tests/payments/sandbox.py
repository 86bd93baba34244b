"""Reaching the sandbox gateway's page for a payment, as the shop's pay URL does."""

from urllib.parse import urlsplit

from django.conf import settings

from payments import services, signing
from payments.sandbox import gateway
from payments.sandbox.models import SandboxNotification

WEBHOOK_URL = "/payments/webhooks/sandbox/"


def gateway_path(payment) -> str:
    """The path of the sandbox's hosted page for this payment, registering the payment there if needed."""
    gateway_url = services.payment_checkout(reference=payment.reference)
    assert gateway_url is not None, f"payment {payment.reference} can no longer be paid"
    return urlsplit(gateway_url).path


def charge_reference(payment) -> str:
    return gateway_path(payment).rstrip("/").rsplit("/", 1)[1]


def deliver(client, event_type: str):
    """Deliver the sandbox's latest notification of this type to the webhook, signed, as its task would."""
    body = SandboxNotification.objects.filter(type=event_type).latest("pk").body.encode()
    signature = signing.sign(settings.SANDBOX_WEBHOOK_SECRET, body)
    response = client.post(WEBHOOK_URL, body, content_type="application/json", HTTP_SANDBOX_SIGNATURE=signature)
    assert response.status_code == 200, response.json()
    return response


def pay_at_gateway(client, payment):
    """The customer pays on the sandbox's page and its success notification reaches the webhook."""
    gateway.charge_decide(charge_reference=charge_reference(payment), pay=True)
    return deliver(client, "payment.succeeded")
