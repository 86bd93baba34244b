"""Refunds: every one gives back part of one attempt, through that attempt's rail.

Recorded first (pending), in the caller's transaction; requested from the rail after commit, outside any
lock, with the refund's reference as our refund number (asking again with it refunds once). The money moves
here only on the rail's word: its signed answer to the request, its notification, or its answer to a query.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.utils import timezone

from orders import locking
from orders import services as order_services
from orders.models import Batch, Order
from payments import messages
from payments.models import Payment, PaymentAllocation, PaymentAttempt, Refund
from payments.providers import ProviderError, ProviderUnavailable, get_provider, provider_notify_url
from payments.services.outcomes import PaymentError

if TYPE_CHECKING:
    from datetime import datetime

logger = logging.getLogger(__name__)

# A refund recorded but still without the rail's answer this long after is asked for again.
REFUND_REQUEST_RETRY_AFTER = timedelta(minutes=1)
# A refund the rail acknowledged but has not confirmed this long after is asked about (and again as often).
REFUND_QUERY_AFTER = timedelta(minutes=5)
# How many refunds one sweep asks for, and asks about: the rest wait for the next run.
SWEEP_LIMIT = 500

PAID = (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED)


def refund_record(*, order: Order, reason: str = "") -> Refund:
    """Record the refund of one order's share (pending), inside the caller's `locking.transaction()`: part of
    the attempt that paid the payment.

    Raises PaymentError when the payment is not paid, the order was already refunded, or the amount would
    exceed what is left to refund. The rail is asked by `refund_request`, after commit.
    """
    allocation = PaymentAllocation.objects.filter(order=order).only("payment_id", "amount").first()
    if allocation is None:
        raise PaymentError(str(messages.ORDER_NOT_PAID))
    payment = locking.lock_one(Payment.objects.filter(pk=allocation.payment_id))
    attempt = payment.attempts.filter(status=PaymentAttempt.Status.SUCCEEDED).first()
    if payment.status not in (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED) or attempt is None:
        raise PaymentError(str(messages.PAYMENT_NOT_REFUNDABLE).format(status=payment.get_status_display()))
    if payment.refunds.filter(order=order).exclude(status=Refund.Status.FAILED).exists():
        raise PaymentError(str(messages.ALREADY_REFUNDED).format(number=order.number))
    if allocation.amount > payment.refundable_amount:
        raise PaymentError(str(messages.REFUND_EXCEEDS_PAYMENT))
    return Refund.objects.create(
        payment=payment, attempt=attempt, order=order, amount=allocation.amount, reason=reason[:255]
    )


def refund_record_unhonoured(*, payment: Payment, attempt: PaymentAttempt, amount: Decimal, reason: str) -> Refund:
    """Record the refund of everything captured on an attempt the shop could not honour. Caller holds the
    payment and attempt locks."""
    return Refund.objects.create(
        payment=payment, attempt=attempt, kind=Refund.Kind.UNHONOURED, amount=amount, reason=reason[:255]
    )


def refund_request(*, refund_id: int) -> Refund:
    """Ask the rail for a recorded refund, holding no lock; safe to repeat (the reference is the key).

    A refusal marks the refund failed and raises PaymentError; an unreachable rail leaves it pending, for
    `refunds_request_unanswered` to ask again with the same number. A rail whose signed answer says the money
    moved has the refund applied at once.
    """
    refund = Refund.objects.select_related("attempt").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING:
        return refund
    provider = get_provider(refund.attempt.provider)
    try:
        answer = provider.refund(refund, notify_url=provider_notify_url(provider.name))
    except ProviderUnavailable as unavailable:
        logger.warning(
            "refund %s: %s unavailable (%s); asked again later", refund.reference, provider.name, unavailable
        )
        return refund
    except ProviderError as refused:
        reason = str(messages.GATEWAY_REFUSED_REFUND).format(reason=refused)
        refund_fail(refund_id=refund_id, reason=reason)
        raise PaymentError(reason) from None
    now = timezone.now()
    refund.provider_reference = answer.provider_reference[:64] or refund.provider_reference
    refund.requested_at = refund.requested_at or now
    Refund.objects.filter(pk=refund_id).update(
        provider_reference=refund.provider_reference, requested_at=refund.requested_at, updated_at=now
    )
    if answer.succeeded:
        refund_confirm(refund_id=refund_id, note="the rail's answer says the money moved")
        refund.refresh_from_db()
    return refund


def payment_refund_order(*, order: Order, reason: str = "") -> Refund:
    """Refund one order's share of its merged payment. The refund completes on the rail's word."""
    with locking.transaction():
        refund = refund_record(order=order, reason=reason)
    return refund_request(refund_id=refund.pk)


def request_committed_refund(refund_id: int) -> None:
    """Ask the rail for a refund that a committed change recorded. That change (and the answer to the rail's
    notification) stands whatever happens here: a refusal leaves the refund failed and the payment flagged,
    anything else leaves it pending for `refunds_request_unanswered` to ask again."""
    try:
        refund_request(refund_id=refund_id)
    except PaymentError as refused:
        logger.error("refund %s refused by the rail: %s", refund_id, refused)
    except Exception:
        logger.exception("refund %s could not be requested now; it is asked again later", refund_id)


def refunds_request_unanswered(*, now: datetime | None = None) -> int:
    """Ask again for refunds the rail never answered (unreachable, or the asking process died), and ask the
    rail about refunds it acknowledged but never confirmed. Returns how many refunds were asked for or about."""
    now = now or timezone.now()
    pending = Refund.objects.filter(status=Refund.Status.PENDING)
    unanswered = pending.filter(requested_at__isnull=True, created_at__lte=now - REFUND_REQUEST_RETRY_AFTER)
    asked = 0
    for refund_id in unanswered.order_by("pk").values_list("pk", flat=True)[:SWEEP_LIMIT]:
        try:
            refund_request(refund_id=refund_id)
        except PaymentError as refused:
            logger.error("refund %s refused by the rail: %s", refund_id, refused)
        asked += 1
    unconfirmed = pending.filter(requested_at__lte=now - REFUND_QUERY_AFTER, updated_at__lte=now - REFUND_QUERY_AFTER)
    for refund_id in unconfirmed.order_by("pk").values_list("pk", flat=True)[:SWEEP_LIMIT]:
        refund_query(refund_id=refund_id)
        asked += 1
    return asked


def refund_query(*, refund_id: int) -> str:
    """Ask the rail what became of a refund it acknowledged, and apply a final answer."""
    refund = Refund.objects.select_related("attempt").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING:
        return f"already {refund.status}"
    try:
        state = get_provider(refund.attempt.provider).query_refund(refund)
    except (ProviderUnavailable, ProviderError) as error:
        state = f"not answered ({error})"
    if state == "succeeded":
        return refund_confirm(refund_id=refund_id, note="the rail's query says it succeeded")
    if state == "failed":
        return refund_fail(refund_id=refund_id, reason=str(messages.RAIL_FAILED_REFUND))
    # Asked about again REFUND_QUERY_AFTER from now.
    Refund.objects.filter(pk=refund_id).update(updated_at=timezone.now())
    return f"rail says {state}"


def refund_confirm(*, refund_id: int, note: str) -> str:
    """The rail says the refund's money moved: apply it, in a transaction of its own."""
    batch_id, payment_id = Refund.objects.filter(pk=refund_id).values_list("payment__batch_id", "payment_id").get()
    with locking.transaction():
        locking.lock_one(Batch.objects.filter(pk=batch_id))
        payment = locking.lock_one(Payment.objects.filter(pk=payment_id))
        return refund_apply_success(payment, Refund.objects.get(pk=refund_id), note=note)


def refund_fail(*, refund_id: int, reason: str) -> str:
    """The rail refused the refund, or says it failed: it is failed here, and its payment flagged for staff."""
    payment_id = Refund.objects.filter(pk=refund_id).values_list("payment_id", flat=True).get()
    with locking.transaction():
        payment = locking.lock_one(Payment.objects.filter(pk=payment_id))
        return refund_apply_failure(payment, Refund.objects.get(pk=refund_id), reason=reason)


def refund_apply_success(payment: Payment, refund: Refund, *, note: str = "the rail confirmed it") -> str:
    """The rail confirms a refund: the money is back with the customer. Caller holds the batch and payment
    locks."""
    attempt = locking.lock_one(PaymentAttempt.objects.filter(pk=refund.attempt_id))
    if refund.order_id is not None:
        order_services.order_mark_refunded(order_id=refund.order_id, note=refund.reason or "refunded")
    refund = locking.lock_one(Refund.objects.filter(pk=refund.pk))
    if refund.status == Refund.Status.SUCCEEDED:
        return "refund already applied"
    refund.set_status(Refund.Status.SUCCEEDED, note=note)
    attempt.refunded_amount += refund.amount
    attempt.save(update_fields=["refunded_amount", "updated_at"])
    if refund.kind == Refund.Kind.UNHONOURED:
        # The payment keeps its status: paid by another attempt, or closed (expired, cancelled); what this
        # attempt captured went back, which its own refunded amount says.
        if payment.status in PAID:
            return f"refunded {refund.amount} captured a second time"
        return f"refunded {refund.amount} captured after the payment was {payment.status}"
    payment.refunded_amount += refund.amount
    payment.set_status(
        Payment.Status.REFUNDED if payment.refunded_amount == payment.amount else Payment.Status.PARTIALLY_REFUNDED,
        note=f"refund {refund.reference} of {refund.amount}",
        also=("refunded_amount",),
    )
    return f"refunded {refund.amount}"


def refund_apply_failure(payment: Payment, refund: Refund, *, reason: str) -> str:
    """The rail refused or failed a refund. Caller holds the payment lock. The order stays as it was (paid,
    or failed at its top-up): staff find the payment flagged."""
    refund = locking.lock_one(Refund.objects.filter(pk=refund.pk))
    if refund.status != Refund.Status.PENDING:
        return f"ignored: refund was {refund.status}"
    refund.set_status(Refund.Status.FAILED, note=reason)
    payment.needs_attention = True
    # A note already there (paid too late, paid twice) says more than this one.
    payment.attention_note = (
        payment.attention_note
        or (str(messages.REFUND_FAILED_NOTE).format(reference=refund.reference, reason=reason)[:255])
    )
    payment.save(update_fields=["needs_attention", "attention_note", "updated_at"])
    logger.error("payment %s: %s", payment.reference, payment.attention_note)
    return f"refund failed: {reason}"
