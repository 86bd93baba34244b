"""Payment attempts: each try at paying a payment on one rail, and what the rails say became of it.

Starting one records it in a short transaction (the payment locked, pending and not expired), then asks the
rail outside any transaction or lock, and stores how the shopper pays it. A declined, failed or abandoned
attempt leaves the payment pending: the shopper may try again, on any rail on offer, until it expires. The
first success pays the payment and closes the attempts still open; money captured on any other attempt is
refunded through that attempt's rail and flagged for staff (SPEC 7.8).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from orders import locking
from orders import services as order_services
from orders.models import Batch
from orders.outbox import queue_task
from payments import messages
from payments.models import Payment, PaymentAttempt, Refund
from payments.providers import (
    GatewayState,
    ProviderError,
    ProviderUnavailable,
    get_provider,
    provider_notify_url,
)
from payments.services.outcomes import Applied, AttemptNotStarted, PaymentError
from payments.services.refunds import PAID, SEND_TASK, refund_record_unhonoured

logger = logging.getLogger(__name__)

# Named, not imported: tasks import services, never the reverse.
CLOSE_TASK = "payments.tasks.close_attempt"


def attempt_start(*, payment_reference: str, provider_name: str, method: str, client_ip: str) -> PaymentAttempt:
    """Start paying a payment with one method of one rail: the attempt, with how the shopper pays it.

    Raises Payment.DoesNotExist, UnknownProvider, PaymentError (not payable, or no such method) and
    AttemptNotStarted (the rail refused or could not be reached: the attempt is failed, nothing was charged).
    Earlier attempts stay open: the shopper may still finish one of them.
    """
    provider = get_provider(provider_name)
    if method not in provider.methods:
        raise PaymentError(str(messages.UNKNOWN_METHOD))
    with locking.transaction():
        payment = locking.lock_first(Payment.objects.filter(reference=payment_reference))
        if payment is None:
            raise Payment.DoesNotExist
        if not payment.is_payable():
            # A pending payment past its expiry is expired for the shopper; the expiry job records it soon.
            pending = payment.status == Payment.Status.PENDING
            status = Payment.Status.EXPIRED.label if pending else payment.get_status_display()
            raise PaymentError(str(messages.PAYMENT_NOT_PAYABLE).format(status=status))
        attempt = PaymentAttempt.objects.create(
            payment=payment,
            provider=provider.name,
            method=method,
            amount=payment.amount,
            currency=payment.currency,
            expires_at=payment.expires_at,
        )
        count = payment.allocations.count()
    try:
        checkout = provider.start(
            attempt,
            description=ngettext("Batchpay: %(count)d order", "Batchpay: %(count)d orders", count) % {"count": count},
            client_ip=client_ip,
            return_url=settings.SITE_URL + reverse("payments:return", args=[payment.reference]),
            notify_url=provider_notify_url(provider.name),
        )
        if bool(checkout.redirect_url) == bool(checkout.qr_text):
            raise ProviderError("the rail answered with no way to pay, or with two")
    except (ProviderError, ProviderUnavailable) as error:
        logger.warning("attempt %s not started at %s: %s", attempt.reference, provider.name, error)
        with locking.transaction():
            attempt = locking.lock_one(PaymentAttempt.objects.filter(pk=attempt.pk))
            if attempt.status == PaymentAttempt.Status.OPEN:
                attempt.set_status(PaymentAttempt.Status.FAILED, note=f"not started: {error}")
        message = messages.RAIL_UNAVAILABLE if isinstance(error, ProviderUnavailable) else messages.RAIL_REFUSED_START
        raise AttemptNotStarted(str(message).format(rail=provider.label)) from None
    attempt.redirect_url, attempt.qr_text = checkout.redirect_url, checkout.qr_text
    PaymentAttempt.objects.filter(pk=attempt.pk).update(
        redirect_url=checkout.redirect_url, qr_text=checkout.qr_text, updated_at=timezone.now()
    )
    return attempt


def attempt_apply_success(
    batch: Batch, payment: Payment, attempt: PaymentAttempt, *, transaction_id: str = ""
) -> Applied:
    """The rail says the attempt was paid. Caller holds the batch, payment and attempt locks.

    The first success of a pending payment pays it; any other capture is unhonoured and given back.
    """
    if transaction_id and not attempt.transaction_id:
        attempt.transaction_id = transaction_id[:64]
    if attempt.status == PaymentAttempt.Status.SUCCEEDED:
        # One capture per attempt at the rail: a success for it again is the same capture.
        return Applied("payment already succeeded")
    if attempt.status == PaymentAttempt.Status.UNHONOURED:
        return _refund_unhonoured(payment, attempt)
    if payment.status == Payment.Status.PENDING:
        attempt.set_status(PaymentAttempt.Status.SUCCEEDED, note="the rail reports it paid", also=("transaction_id",))
        payment.paid_at = timezone.now()
        payment.set_status(Payment.Status.SUCCEEDED, note=f"attempt {attempt.reference} paid", also=("paid_at",))
        # A code or page of another attempt left open at its rail would take the money a second time; closed
        # here before the orders are locked (attempts rank before orders).
        attempts_close_open(payment=payment, note=f"the payment was paid by attempt {attempt.reference}")
        order_services.batch_mark_paid(batch=batch)
        return Applied("payment succeeded; orders paid")
    attempt.set_status(
        PaymentAttempt.Status.UNHONOURED,
        note=f"paid when the payment was {payment.status}",
        also=("transaction_id",),
    )
    return _refund_unhonoured(payment, attempt)


def _refund_unhonoured(payment: Payment, attempt: PaymentAttempt) -> Applied:
    """Money captured on an attempt the shop cannot honour (the payment was paid by another attempt, or
    closed: expired, cancelled) goes back, once, through the attempt's own rail, and staff are told (SPEC 7.8).
    Caller holds the payment and attempt locks.

    The refund is recorded with the event, in this transaction, and its request queued with it (the outbox):
    the rail is asked by a worker, never in the request that brought the news; if that task is lost,
    `refunds_request_unanswered` asks.
    """
    paid_already = payment.status in PAID
    status = payment.get_status_display()
    if paid_already:
        note = str(messages.PAID_TWICE).format(reference=attempt.reference)
        reason = str(messages.UNHONOURED_TWICE_REASON)
        outcome = "not applied: payment already succeeded on another attempt"
    else:
        note = str(messages.PAID_TOO_LATE).format(status=status)
        reason = str(messages.UNHONOURED_REFUND_REASON).format(status=status)
        outcome = f"not applied: payment was {payment.status}"
    for flagged in (payment, attempt):
        flagged.needs_attention = True
        flagged.attention_note = note[:255]
        flagged.save(update_fields=["needs_attention", "attention_note", "updated_at"])
    logger.error("payment %s, attempt %s: %s", payment.reference, attempt.reference, note)
    if attempt.refunds.filter(kind=Refund.Kind.UNHONOURED).exclude(status=Refund.Status.FAILED).exists():
        return Applied(f"{outcome}; its refund is already under way", True)
    amount = attempt.refundable_amount
    if amount <= 0:
        return Applied(f"{outcome}; nothing left to refund", True)
    request = refund_record_unhonoured(payment=payment, attempt=attempt, amount=amount, reason=reason)
    queue_task(SEND_TASK, request.pk)
    return Applied(f"{outcome}; refunding {amount}", True)


def attempt_apply_failure(payment: Payment, attempt: PaymentAttempt) -> Applied:
    """The rail says the attempt was declined: the payment stays pending and the shopper may try again."""
    if attempt.status != PaymentAttempt.Status.OPEN:
        return Applied(f"ignored: attempt was {attempt.status}")
    attempt.set_status(PaymentAttempt.Status.DECLINED, note="the rail reports it declined")
    return Applied(f"attempt declined; payment {payment.status}")


def attempt_apply_closed(attempt: PaymentAttempt) -> Applied:
    """The rail says it will not take money for the attempt any more (the shopper abandoned it)."""
    if attempt.status != PaymentAttempt.Status.OPEN:
        return Applied(f"ignored: attempt was {attempt.status}")
    attempt.set_status(PaymentAttempt.Status.CLOSED, note="the rail closed it")
    return Applied("attempt closed by the rail")


def attempts_close_open(*, payment: Payment, note: str) -> int:
    """The payment can no longer be paid: its open attempts are closed here now, and at their rails after
    commit, outside any lock (a success that crosses the close is refunded). Caller holds the payment lock."""
    open_attempts = locking.lock_all(payment.attempts.filter(status=PaymentAttempt.Status.OPEN))
    PaymentAttempt.bulk_set_status(open_attempts, PaymentAttempt.Status.CLOSED, note=note)
    for attempt in open_attempts:
        queue_task(CLOSE_TASK, attempt.pk)
    return len(open_attempts)


def attempt_close_at_rail(*, attempt_id: int) -> str:
    """Tell the rail that a closed attempt may not be paid any more. Raises ProviderUnavailable (the task
    asks again later)."""
    attempt = PaymentAttempt.objects.get(pk=attempt_id)
    if attempt.status in PaymentAttempt.CAPTURED:
        return f"not closed: already {attempt.status}"
    try:
        get_provider(attempt.provider).close(attempt)
    except ProviderError as refused:
        # E.g. paid meanwhile: its notification, or the reconcile job, says so and the capture is refunded.
        logger.warning("attempt %s: %s would not close it: %s", attempt.reference, attempt.provider, refused)
        return f"the rail would not close it: {refused}"
    return "closed at the rail"


def attempt_reconcile(*, attempt_id: int) -> str:
    """Ask the rail about an open attempt and apply its answer through the notifications' path."""
    attempt = PaymentAttempt.objects.select_related("payment").get(pk=attempt_id)
    try:
        state = get_provider(attempt.provider).query(attempt)
    except (ProviderUnavailable, ProviderError) as error:
        return f"gateway not asked: {error}"
    if state.status not in (GatewayState.PAID, GatewayState.DECLINED, GatewayState.CLOSED):
        return f"gateway says {state.status}"
    with locking.transaction():
        batch = locking.lock_one(Batch.objects.filter(pk=attempt.payment.batch_id))
        payment = locking.lock_one(Payment.objects.filter(pk=attempt.payment_id))
        attempt = locking.lock_one(PaymentAttempt.objects.filter(pk=attempt_id))
        if state.status == GatewayState.PAID:
            if state.amount is not None and state.amount != attempt.amount:
                attempt.needs_attention = True
                attempt.attention_note = f"the rail says {state.amount} was paid, not {attempt.amount}"
                attempt.save(update_fields=["needs_attention", "attention_note", "updated_at"])
                return f"not applied: {attempt.attention_note}"
            return attempt_apply_success(batch, payment, attempt, transaction_id=state.transaction_id).outcome
        if state.status == GatewayState.DECLINED:
            return attempt_apply_failure(payment, attempt).outcome
        return attempt_apply_closed(attempt).outcome


def payment_reconcile(*, payment_id: int) -> str:
    """Ask the rails about every open attempt of a payment (notifications can be lost)."""
    open_attempts = PaymentAttempt.objects.filter(payment_id=payment_id, status=PaymentAttempt.Status.OPEN)
    outcomes = [attempt_reconcile(attempt_id=pk) for pk in open_attempts.order_by("pk").values_list("pk", flat=True)]
    return "; ".join(outcomes) or "no open attempt"
