"""A rail's notification, verified by its provider, applied once (the event id makes redelivery harmless)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from orders import locking
from orders.models import Batch
from payments import messages
from payments.models import GatewayEvent, Payment, PaymentAttempt
from payments.providers import InvalidNotification, Notification
from payments.services.attempts import attempt_apply_failure, attempt_apply_success
from payments.services.outcomes import Applied
from payments.services.refunds import refund_apply_failure, refund_apply_success


class UnknownAttempt(InvalidNotification):
    def __init__(self, reference: str):
        super().__init__(f"no payment attempt has the reference {reference!r}", status=404)


def notification_apply(*, provider_name: str, notification: Notification) -> str:
    """Apply one verified notification of a rail, once. Returns what happened, for the event log.

    The notification names an attempt of that rail; raises UnknownAttempt (404) or InvalidNotification (400)
    without changing anything.
    """
    found = (
        PaymentAttempt.objects.filter(reference=notification.reference, provider=provider_name)
        .values("pk", "payment_id", "payment__batch_id")
        .first()
    )
    if found is None:
        raise UnknownAttempt(notification.reference)
    with locking.transaction():
        batch = locking.lock_one(Batch.objects.filter(pk=found["payment__batch_id"]))
        payment = locking.lock_one(Payment.objects.filter(pk=found["payment_id"]))
        attempt = locking.lock_one(PaymentAttempt.objects.filter(pk=found["pk"]))
        if GatewayEvent.objects.filter(provider=provider_name, event_id=notification.event_id).exists():
            return "duplicate: already applied"
        _check_matches(attempt, notification)
        outcome, attention = _apply(batch, payment, attempt, notification)
        try:
            with transaction.atomic():
                GatewayEvent.objects.create(
                    provider=provider_name,
                    event_id=notification.event_id,
                    type=notification.type,
                    payment=payment,
                    attempt=attempt,
                    payload=notification.payload or {},
                    outcome=outcome,
                    needs_attention=attention,
                )
        except IntegrityError:
            # The same event applied concurrently by another request: undo ours (a refund it recorded
            # included), theirs stands.
            transaction.set_rollback(True)
            return "duplicate: applied concurrently"
    return outcome


def _check_matches(attempt: PaymentAttempt, notification: Notification) -> None:
    if notification.currency != attempt.currency:
        raise InvalidNotification(f"currency {notification.currency} does not match the attempt's {attempt.currency}")
    if notification.type.startswith("refund."):
        request = attempt.refund_requests.filter(reference=notification.refund_reference).first()
        if request is None:
            raise InvalidNotification(f"no refund {notification.refund_reference!r} of this attempt")
        if request.amount != notification.amount:
            raise InvalidNotification(f"amount {notification.amount} does not match the refund's {request.amount}")
    elif notification.amount != attempt.amount:
        raise InvalidNotification(f"amount {notification.amount} does not match the attempt's {attempt.amount}")


def _apply(batch: Batch, payment: Payment, attempt: PaymentAttempt, notification: Notification) -> Applied:
    if notification.type == "payment.succeeded":
        return attempt_apply_success(batch, payment, attempt, transaction_id=notification.transaction_id)
    if notification.type == "payment.failed":
        return attempt_apply_failure(payment, attempt)
    # A refund notification names our refund number: the request, and so every refund it carries.
    request = attempt.refund_requests.get(reference=notification.refund_reference)
    if notification.type == "refund.succeeded":
        return Applied(refund_apply_success(payment, request))
    return Applied(refund_apply_failure(payment, request, reason=str(messages.RAIL_FAILED_REFUND)), True)
