"""Write operations of the payments app.

The orders app hands a placed batch over through `payment_create_for_batch` (that call and its contract
are final). Money moves only in `notification_apply`, on a verified gateway notification, or in
`payment_reconcile`, on the gateway's own answer to a query; both go through the same functions.

Lock order, as in orders: the batch, then the payment, then its orders and refunds.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import services as order_services
from orders.models import Batch, Order
from payments import messages
from payments.models import GatewayEvent, Payment, PaymentAllocation, Refund
from payments.providers import GatewayState, InvalidNotification, Notification, ProviderError, get_provider

logger = logging.getLogger(__name__)


class PaymentError(Exception):
    """A payment operation that the rules do not allow; the message is for people."""


class UnknownPayment(InvalidNotification):
    def __init__(self, reference: str):
        super().__init__(f"no payment has the reference {reference!r}", status=404)


def payment_create_for_batch(*, batch, orders) -> Payment:
    """Create the one merged payment for a batch's placed orders and register it with the gateway.

    Idempotent per batch; the caller holds the batch lock, and the one-to-one on `batch` makes a second
    payment impossible even without it.
    """
    with transaction.atomic():
        existing = Payment.objects.filter(batch=batch).first()
        if existing is not None:
            return existing
        orders = list(orders)
        if not orders:
            raise PaymentError(f"batch {batch.pk} has no placed orders to pay for")
        provider = get_provider()
        payment = Payment.objects.create(
            batch=batch,
            owner_id=batch.owner_id,
            amount=sum((order.amount for order in orders), Decimal("0")),
            currency=settings.SHOP_CURRENCY,
            provider=provider.name,
            expires_at=timezone.now() + timedelta(minutes=settings.PAYMENT_EXPIRY_MINUTES),
        )
        PaymentAllocation.objects.bulk_create(
            [PaymentAllocation(payment=payment, order=order, amount=order.amount) for order in orders],
            batch_size=1000,
        )
        payment.pay_url = provider.create(payment, orders)
        payment.save(update_fields=["pay_url"])
        return payment


def payment_cancel_for_batch(*, batch) -> None:
    """The batch is being cancelled before payment: its pending payment can no longer be paid."""
    payment = Payment.objects.select_for_update().filter(batch=batch).first()
    if payment is None:
        return
    if payment.status != Payment.Status.PENDING:
        raise PaymentError(f"payment {payment.reference} is {payment.status} and cannot be cancelled")
    _set_status(payment, Payment.Status.CANCELLED)


def notification_apply(*, provider_name: str, notification: Notification) -> str:
    """Apply one verified gateway notification, once. Returns what happened, for the event log.

    Raises UnknownPayment (404) or InvalidNotification (400) without changing anything.
    """
    payment_ref = Payment.objects.filter(reference=notification.reference).values("pk", "batch_id").first()
    if payment_ref is None:
        raise UnknownPayment(notification.reference)
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=payment_ref["batch_id"])
        payment = Payment.objects.select_for_update().get(pk=payment_ref["pk"])
        if GatewayEvent.objects.filter(provider=provider_name, event_id=notification.event_id).exists():
            return "duplicate: already applied"
        _check_matches(payment, notification)
        outcome, attention = _apply(batch, payment, notification)
        try:
            with transaction.atomic():
                GatewayEvent.objects.create(
                    provider=provider_name,
                    event_id=notification.event_id,
                    type=notification.type,
                    payment=payment,
                    payload=notification.payload or {},
                    outcome=outcome,
                    needs_attention=attention,
                )
        except IntegrityError:
            # The same event applied concurrently by another request: undo ours, theirs stands.
            transaction.set_rollback(True)
            return "duplicate: applied concurrently"
    return outcome


def _check_matches(payment: Payment, notification: Notification) -> None:
    if notification.currency != payment.currency:
        raise InvalidNotification(f"currency {notification.currency} does not match the payment's {payment.currency}")
    if notification.type == "refund.succeeded":
        refund = payment.refunds.filter(provider_reference=notification.refund_reference).first()
        if refund is None:
            raise InvalidNotification(f"no refund {notification.refund_reference!r} on this payment")
        if refund.amount != notification.amount:
            raise InvalidNotification(f"amount {notification.amount} does not match the refund's {refund.amount}")
    elif notification.amount != payment.amount:
        raise InvalidNotification(f"amount {notification.amount} does not match the payment's {payment.amount}")


def _apply(batch: Batch, payment: Payment, notification: Notification) -> tuple[str, bool]:
    if notification.type == "payment.succeeded":
        return payment_apply_success(batch, payment)
    if notification.type == "payment.failed":
        return payment_apply_failure(batch, payment)
    refund = payment.refunds.select_for_update().get(provider_reference=notification.refund_reference)
    return refund_apply_success(payment, refund), False


def payment_apply_success(batch: Batch, payment: Payment) -> tuple[str, bool]:
    """The gateway says the customer paid. Caller holds the batch and payment locks."""
    if payment.status == Payment.Status.PENDING:
        payment.paid_at = timezone.now()
        _set_status(payment, Payment.Status.SUCCEEDED)
        order_services.batch_mark_paid(batch=batch)
        return "payment succeeded; orders paid", False
    if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED):
        return "payment already succeeded", False
    # Paid after we gave up on it (expired, cancelled, declined): the money arrived but the orders are
    # gone. Never applied silently: staff refund it or honour it.
    payment.needs_attention = True
    payment.attention_note = str(messages.PAID_TOO_LATE).format(status=payment.get_status_display())
    payment.save(update_fields=["needs_attention", "attention_note", "updated_at"])
    logger.error("payment %s: %s", payment.reference, payment.attention_note)
    return f"not applied: payment was {payment.status}", True


def payment_apply_failure(batch: Batch, payment: Payment) -> tuple[str, bool]:
    """The gateway says the payment was declined: the batch's orders are cancelled, stock released."""
    if payment.status != Payment.Status.PENDING:
        return f"ignored: payment was {payment.status}", False
    _set_status(payment, Payment.Status.FAILED)
    order_services.batch_close_unpaid(batch=batch, status=Batch.Status.CANCELLED, note="payment declined")
    return "payment failed; orders cancelled", False


def payment_refund_order(*, order: Order, reason: str = "") -> Refund:
    """Refund one order's share of its merged payment. The refund completes on the gateway's notification.

    Raises PaymentError when the payment is not paid, the order was already refunded, or the amount
    would exceed what is left to refund.
    """
    allocation = PaymentAllocation.objects.filter(order=order).select_related("payment").first()
    if allocation is None:
        raise PaymentError(str(messages.ORDER_NOT_PAID))
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=allocation.payment_id)
        if payment.status not in (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED):
            raise PaymentError(str(messages.PAYMENT_NOT_REFUNDABLE).format(status=payment.get_status_display()))
        if payment.refunds.filter(order=order).exclude(status=Refund.Status.FAILED).exists():
            raise PaymentError(str(messages.ALREADY_REFUNDED).format(number=order.number))
        if allocation.amount > payment.refundable_amount:
            raise PaymentError(str(messages.REFUND_EXCEEDS_PAYMENT))
        refund = Refund.objects.create(payment=payment, order=order, amount=allocation.amount, reason=reason[:255])
        try:
            refund.provider_reference = get_provider(payment.provider).refund(refund)
        except ProviderError as refused:
            raise PaymentError(str(messages.GATEWAY_REFUSED_REFUND).format(reason=refused)) from None
        refund.save(update_fields=["provider_reference"])
    return refund


def refund_apply_success(payment: Payment, refund: Refund) -> str:
    """The gateway confirms a refund: the money is back with the customer. Caller holds the locks."""
    if refund.status == Refund.Status.SUCCEEDED:
        return "refund already applied"
    refund.status = Refund.Status.SUCCEEDED
    refund.save(update_fields=["status", "updated_at"])
    payment.refunded_amount += refund.amount
    _set_status(
        payment,
        Payment.Status.REFUNDED if payment.refunded_amount == payment.amount else Payment.Status.PARTIALLY_REFUNDED,
    )
    order_services.order_mark_refunded(order_id=refund.order_id, note=refund.reason or "refunded")
    return f"refunded {refund.amount}"


def payment_reconcile(*, payment_id) -> str:
    """Ask the gateway about a payment still pending here and apply its answer through the webhook's path."""
    payment = Payment.objects.get(pk=payment_id)
    state = get_provider(payment.provider).query(payment)
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=payment.batch_id)
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != Payment.Status.PENDING:
            return f"already {payment.status}"
        if state == GatewayState.PAID:
            return payment_apply_success(batch, payment)[0]
        if state == GatewayState.DECLINED:
            return payment_apply_failure(batch, payment)[0]
    return f"gateway says {state}"


def payment_expire(*, payment_id, now=None) -> str:
    """Expire an unpaid payment past its time: it, its orders and its batch become expired.

    The gateway is asked first, so a payment whose notification was lost is applied, not expired.
    """
    outcome = payment_reconcile(payment_id=payment_id)
    now = now or timezone.now()
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(payment__pk=payment_id)
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status != Payment.Status.PENDING or payment.expires_at > now:
            return outcome
        _set_status(payment, Payment.Status.EXPIRED)
        order_services.batch_close_unpaid(batch=batch, status=Batch.Status.EXPIRED, note="payment expired")
    return "expired"


def _set_status(payment: Payment, status: str) -> None:
    """The one place a payment changes status (the lifecycle in SPEC section 4)."""
    if status not in Payment.TRANSITIONS[payment.status]:
        raise PaymentError(f"payment {payment.reference}: {payment.status} → {status}")
    payment.status = status
    payment.save(update_fields=["status", "paid_at", "refunded_amount", "updated_at"])
