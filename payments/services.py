"""Write operations of the payments app.

The orders app hands a placed batch over through the `Billing` it was given (payments/billing.py), which
records the merged payment here. Money moves only in `notification_apply`, on a verified gateway
notification, or in `payment_reconcile`, on the gateway's own answer to a query; both go through the same
functions.

Locks follow orders/locking.py (batch → payment → orders → refunds). No gateway call happens while a lock
is held: registering a payment and requesting a refund record the intent first, call the gateway after
commit, and apply its answer in a short transaction of their own.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from orders import locking
from orders import services as order_services
from orders.billing import BillingRefused
from orders.models import Batch, Order
from payments import messages
from payments.models import GatewayEvent, Payment, PaymentAllocation, Refund
from payments.providers import GatewayState, InvalidNotification, Notification, ProviderError, get_provider

if TYPE_CHECKING:
    from datetime import datetime

logger = logging.getLogger(__name__)

# A refund recorded but still without the gateway's answer this long after is asked for again.
REFUND_REQUEST_RETRY_AFTER = timedelta(minutes=1)


class PaymentError(BillingRefused):
    """A payment operation that the rules do not allow; the message is for people."""


class UnknownPayment(InvalidNotification):
    def __init__(self, reference: str):
        super().__init__(f"no payment has the reference {reference!r}", status=404)


class Applied(NamedTuple):
    """What applying a gateway's word did: the outcome for the event log, and whether staff must look."""

    outcome: str
    attention: bool = False


def payment_create_for_batch(*, batch: Batch, orders: list[Order]) -> Payment:
    """Record the one merged payment for a batch's placed orders (no gateway call: see payment_checkout).

    Inside the caller's transaction, with the batch locked; the one-to-one on `batch` makes a second
    payment impossible even without the lock.
    """
    existing = Payment.objects.filter(batch=batch).first()
    if existing is not None:
        return existing
    if not orders:
        raise PaymentError(f"batch {batch.pk} has no placed orders to pay for")
    payment = Payment.objects.create(
        batch=batch,
        owner_id=batch.owner_id,
        amount=sum((order.amount for order in orders), Decimal("0")),
        currency=settings.SHOP_CURRENCY,
        provider=settings.PAYMENT_PROVIDER,
        expires_at=timezone.now() + timedelta(minutes=settings.PAYMENT_EXPIRY_MINUTES),
    )
    PaymentAllocation.objects.bulk_create(
        [PaymentAllocation(payment=payment, order=order, amount=order.amount) for order in orders],
        batch_size=1000,
    )
    return payment


def payment_pay_url(payment: Payment) -> str:
    """Where people and integrators send the customer to pay: our page, which leads to the gateway."""
    url: str = settings.SITE_URL + reverse("payments:pay", args=[payment.reference])
    return url


def payment_checkout(*, reference: str) -> str | None:
    """The gateway page where the customer pays this payment, registering it with the gateway first if needed.

    None when the payment can no longer be paid. The gateway call happens outside any transaction; a second
    caller racing this one registers the same payment again, which gateways answer idempotently per
    merchant reference.
    """
    payment = Payment.objects.filter(reference=reference).first()
    if payment is None or payment.status != Payment.Status.PENDING:
        return None
    if payment.gateway_url:
        return payment.gateway_url
    orders = list(
        Order.objects.filter(allocation__payment=payment).only("pk", "number", "kind", "amount").order_by("row_index")
    )
    gateway_url = get_provider(payment.provider).create(payment, orders)
    Payment.objects.filter(pk=payment.pk, gateway_url="").update(gateway_url=gateway_url, updated_at=timezone.now())
    return gateway_url


def payment_cancel_for_batch(*, batch: Batch) -> None:
    """The batch is being cancelled before payment: its pending payment can no longer be paid.

    The caller holds the batch lock.
    """
    payment = locking.lock_first(Payment.objects.filter(batch=batch))
    if payment is None:
        return
    if payment.status != Payment.Status.PENDING:
        raise PaymentError(f"payment {payment.reference} is {payment.status} and cannot be cancelled")
    payment.set_status(Payment.Status.CANCELLED, note="the customer cancelled the batch")


def notification_apply(*, provider_name: str, notification: Notification) -> str:
    """Apply one verified gateway notification, once. Returns what happened, for the event log.

    Raises UnknownPayment (404) or InvalidNotification (400) without changing anything.
    """
    payment_ref = Payment.objects.filter(reference=notification.reference).values("pk", "batch_id").first()
    if payment_ref is None:
        raise UnknownPayment(notification.reference)
    with locking.transaction():
        batch = locking.lock_one(Batch.objects.filter(pk=payment_ref["batch_id"]))
        payment = locking.lock_one(Payment.objects.filter(pk=payment_ref["pk"]))
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
            # The same event applied concurrently by another request: undo ours (a refund it recorded
            # included), theirs stands.
            transaction.set_rollback(True)
            return "duplicate: applied concurrently"
    return outcome


def _check_matches(payment: Payment, notification: Notification) -> None:
    if notification.currency != payment.currency:
        raise InvalidNotification(f"currency {notification.currency} does not match the payment's {payment.currency}")
    if notification.type == "refund.succeeded":
        refund = payment.refunds.filter(reference=notification.refund_reference).first()
        if refund is None:
            raise InvalidNotification(f"no refund {notification.refund_reference!r} on this payment")
        if refund.amount != notification.amount:
            raise InvalidNotification(f"amount {notification.amount} does not match the refund's {refund.amount}")
    elif notification.amount != payment.amount:
        raise InvalidNotification(f"amount {notification.amount} does not match the payment's {payment.amount}")


def _apply(batch: Batch, payment: Payment, notification: Notification) -> Applied:
    if notification.type == "payment.succeeded":
        return payment_apply_success(batch, payment)
    if notification.type == "payment.failed":
        return payment_apply_failure(batch, payment)
    return Applied(refund_apply_success(payment, payment.refunds.get(reference=notification.refund_reference)))


def payment_apply_success(batch: Batch, payment: Payment) -> Applied:
    """The gateway says the customer paid. Caller holds the batch and payment locks."""
    if payment.status == Payment.Status.PENDING:
        payment.paid_at = timezone.now()
        payment.set_status(Payment.Status.SUCCEEDED, note="the gateway reports it paid", also=("paid_at",))
        order_services.batch_mark_paid(batch=batch)
        return Applied("payment succeeded; orders paid")
    if payment.status in (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED):
        # One charge per payment at the gateway: a success for a paid payment is the same capture again.
        return Applied("payment already succeeded")
    return _refund_unhonoured(payment)


def _refund_unhonoured(payment: Payment) -> Applied:
    """Paid after the shop gave up on it (expired, cancelled, declined): its orders are gone, so what the
    gateway captured goes back, once, and staff are told (SPEC 7.8). Caller holds the payment lock.

    The refund is recorded with the event, in this transaction, and requested from the gateway after
    commit, outside the locks; if that request is lost, `refunds_request_unanswered` makes it.
    """
    status = payment.get_status_display()
    payment.needs_attention = True
    payment.attention_note = str(messages.PAID_TOO_LATE).format(status=status)
    payment.save(update_fields=["needs_attention", "attention_note", "updated_at"])
    logger.error("payment %s: %s", payment.reference, payment.attention_note)
    outcome = f"not applied: payment was {payment.status}"
    if payment.refunds.filter(kind=Refund.Kind.UNHONOURED).exclude(status=Refund.Status.FAILED).exists():
        return Applied(f"{outcome}; its refund is already under way", True)
    amount = payment.refundable_amount
    if amount <= 0:
        return Applied(f"{outcome}; nothing left to refund", True)
    refund = Refund.objects.create(
        payment=payment,
        kind=Refund.Kind.UNHONOURED,
        amount=amount,
        reason=str(messages.UNHONOURED_REFUND_REASON).format(status=status)[:255],
    )
    transaction.on_commit(partial(_request_committed_refund, refund.pk))
    return Applied(f"{outcome}; refunding {amount}", True)


def _request_committed_refund(refund_id: int) -> None:
    """Ask the gateway for a refund that a committed change recorded. That change (and the answer to the
    gateway's notification) stands whatever happens here: a refusal leaves the refund failed and the payment
    flagged, anything else leaves it pending for `refunds_request_unanswered` to ask again."""
    try:
        refund_request(refund_id=refund_id)
    except PaymentError as refused:
        logger.error("refund %s refused by the gateway: %s", refund_id, refused)
    except Exception:
        logger.exception("refund %s could not be requested now; it is asked again later", refund_id)


def payment_apply_failure(batch: Batch, payment: Payment) -> Applied:
    """The gateway says the payment was declined: the batch's orders are cancelled, stock released."""
    if payment.status != Payment.Status.PENDING:
        return Applied(f"ignored: payment was {payment.status}")
    payment.set_status(Payment.Status.FAILED, note="the gateway reports it declined")
    order_services.batch_close_unpaid(batch=batch, status=Batch.Status.CANCELLED, note="payment declined")
    return Applied("payment failed; orders cancelled")


def refund_record(*, order: Order, reason: str = "") -> Refund:
    """Record the refund of one order's share (pending), inside the caller's `locking.transaction()`.

    Raises PaymentError when the payment is not paid, the order was already refunded, or the amount would
    exceed what is left to refund. The gateway is asked by `refund_request`, after commit.
    """
    allocation = PaymentAllocation.objects.filter(order=order).only("payment_id", "amount").first()
    if allocation is None:
        raise PaymentError(str(messages.ORDER_NOT_PAID))
    payment = locking.lock_one(Payment.objects.filter(pk=allocation.payment_id))
    if payment.status not in (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED):
        raise PaymentError(str(messages.PAYMENT_NOT_REFUNDABLE).format(status=payment.get_status_display()))
    if payment.refunds.filter(order=order).exclude(status=Refund.Status.FAILED).exists():
        raise PaymentError(str(messages.ALREADY_REFUNDED).format(number=order.number))
    if allocation.amount > payment.refundable_amount:
        raise PaymentError(str(messages.REFUND_EXCEEDS_PAYMENT))
    return Refund.objects.create(payment=payment, order=order, amount=allocation.amount, reason=reason[:255])


def refund_request(*, refund_id: int) -> Refund:
    """Ask the gateway for a recorded refund, holding no lock; safe to repeat (the reference is the key).

    A refusal marks the refund failed and raises PaymentError; an unreachable gateway leaves it pending,
    for `refunds_request_unanswered` to ask again.
    """
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING:
        return refund
    try:
        gateway_reference = get_provider(refund.payment.provider).refund(refund)
    except ProviderError as refused:
        reason = str(messages.GATEWAY_REFUSED_REFUND).format(reason=refused)
        with locking.transaction():
            refund = locking.lock_one(Refund.objects.filter(pk=refund_id))
            if refund.status == Refund.Status.PENDING:
                refund.set_status(Refund.Status.FAILED, note=reason)
        raise PaymentError(reason) from None
    Refund.objects.filter(pk=refund_id).update(provider_reference=gateway_reference, updated_at=timezone.now())
    refund.provider_reference = gateway_reference
    return refund


def payment_refund_order(*, order: Order, reason: str = "") -> Refund:
    """Refund one order's share of its merged payment. The refund completes on the gateway's notification."""
    with locking.transaction():
        refund = refund_record(order=order, reason=reason)
    return refund_request(refund_id=refund.pk)


def refunds_request_unanswered(*, now: datetime | None = None) -> int:
    """Ask again for refunds recorded but never acknowledged by the gateway (the asking process died)."""
    cutoff = (now or timezone.now()) - REFUND_REQUEST_RETRY_AFTER
    unanswered = Refund.objects.filter(
        status=Refund.Status.PENDING, provider_reference="", created_at__lte=cutoff
    ).values_list("pk", flat=True)
    asked = 0
    for refund_id in unanswered[:500]:
        try:
            refund_request(refund_id=refund_id)
        except PaymentError as refused:
            logger.error("refund %s refused by the gateway: %s", refund_id, refused)
        asked += 1
    return asked


def refund_apply_success(payment: Payment, refund: Refund) -> str:
    """The gateway confirms a refund: the money is back with the customer. Caller holds the payment lock."""
    if refund.order_id is not None:
        order_services.order_mark_refunded(order_id=refund.order_id, note=refund.reason or "refunded")
    refund = locking.lock_one(Refund.objects.filter(pk=refund.pk))
    if refund.status == Refund.Status.SUCCEEDED:
        return "refund already applied"
    refund.set_status(Refund.Status.SUCCEEDED, note="the gateway confirmed it")
    payment.refunded_amount += refund.amount
    if refund.kind == Refund.Kind.UNHONOURED:
        # The payment keeps the status that made it unhonourable (expired, cancelled); the amount says
        # that what was captured went back.
        payment.save(update_fields=["refunded_amount", "updated_at"])
        return f"refunded {refund.amount} captured after the payment was {payment.status}"
    payment.set_status(
        Payment.Status.REFUNDED if payment.refunded_amount == payment.amount else Payment.Status.PARTIALLY_REFUNDED,
        note=f"refund {refund.reference} of {refund.amount}",
        also=("refunded_amount",),
    )
    return f"refunded {refund.amount}"


def payment_reconcile(*, payment_id: int) -> str:
    """Ask the gateway about a payment still pending here and apply its answer through the webhook's path."""
    payment = Payment.objects.get(pk=payment_id)
    state = get_provider(payment.provider).query(payment)
    with locking.transaction():
        batch = locking.lock_one(Batch.objects.filter(pk=payment.batch_id))
        payment = locking.lock_one(Payment.objects.filter(pk=payment_id))
        if payment.status != Payment.Status.PENDING:
            return f"already {payment.status}"
        if state == GatewayState.PAID:
            return payment_apply_success(batch, payment).outcome
        if state == GatewayState.DECLINED:
            return payment_apply_failure(batch, payment).outcome
    return f"gateway says {state}"


def payment_expire(*, payment_id: int, now: datetime | None = None) -> str:
    """Expire an unpaid payment past its time: it, its orders and its batch become expired.

    The gateway is asked first, so a payment whose notification was lost is applied, not expired.
    """
    outcome = payment_reconcile(payment_id=payment_id)
    now = now or timezone.now()
    with locking.transaction():
        batch = locking.lock_one(Batch.objects.filter(payment__pk=payment_id))
        payment = locking.lock_one(Payment.objects.filter(pk=payment_id))
        if payment.status != Payment.Status.PENDING or payment.expires_at is None or payment.expires_at > now:
            return outcome
        payment.set_status(Payment.Status.EXPIRED, note="not paid in time")
        order_services.batch_close_unpaid(batch=batch, status=Batch.Status.EXPIRED, note="payment expired")
    return "expired"
