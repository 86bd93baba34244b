"""Refunds: every one gives back part of one attempt, through that attempt's rail, carried by a refund request.

An order's share is recorded first (pending, with no request yet), in the caller's transaction, and a
grouping task is queued. When the shares of an attempt fall due (`PAYMENT_REFUND_GROUPING_SECONDS` after the
first, later as a rail's request budget runs low), `refunds_group` gathers every one still waiting into ONE
`RefundRequest` and queues its sending; the rail is asked outside any lock, with the request's reference as
our refund number (asking again with it refunds once). A refund of an unhonoured capture is a request of its
own. The money moves here only on the rail's word about a request: its signed answer, its notification
naming our refund number, or its answer to a query; that word settles every refund the request carries.

The policy behind the grouping delay is in docs/payments.md, "Refund grouping and its limits".
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Count, Max, Min, QuerySet
from django.utils import timezone

from orders import locking
from orders import services as order_services
from orders.models import Batch, Order
from orders.outbox import queue_task
from payments import messages
from payments.models import Payment, PaymentAllocation, PaymentAttempt, Refund, RefundRequest
from payments.providers import ProviderError, ProviderUnavailable, get_provider, provider_notify_url
from payments.services.outcomes import PaymentError

if TYPE_CHECKING:
    from datetime import datetime

logger = logging.getLogger(__name__)

GROUP_TASK = "payments.tasks.group_refunds"
SEND_TASK = "payments.tasks.send_refund_request"
# A request recorded but still without the rail's answer this long after is asked for again.
REFUND_REQUEST_RETRY_AFTER = timedelta(minutes=1)
# A request the rail acknowledged but has not confirmed this long after is asked about (and again as often).
REFUND_QUERY_AFTER = timedelta(minutes=5)
# How many requests one sweep asks for, and asks about: the rest wait for the next run.
SWEEP_LIMIT = 500
# On a rail with a limit of N requests per payment, the last RESERVE of them are spaced ever wider apart.
MAX_RESERVE = 10
# A grouping task waits at most this long, then looks again: a longer countdown would outlast the broker's
# visibility timeout (CELERY_BROKER_TRANSPORT_OPTIONS) and run twice.
GROUPING_LOOK_AGAIN_AFTER = timedelta(minutes=10)

PAID = (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED)


# --- Recording ---------------------------------------------------------------------------------------------


def refund_record(*, order: Order, reason: str = "") -> Refund:
    """Record the refund of one order's share (pending), inside the caller's `locking.transaction()`: part of
    the attempt that paid the payment. Its grouping into a request is queued with it.

    Raises PaymentError when the payment is not paid, the order was already refunded, the amount would
    exceed what is left to refund, or the attempt's rail has no refund request left for it.
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
    provider = get_provider(attempt.provider)
    limit = provider.max_refunds_per_payment
    if limit is not None and attempt.refund_requests.count() >= limit:
        raise PaymentError(str(messages.REFUND_REQUESTS_USED_UP).format(rail=provider.label, limit=limit))
    # Under the payment's lock: a share already waiting has its grouping task queued, which takes this one too.
    waiting = _waiting_shares(attempt).exists()
    refund = Refund.objects.create(
        payment=payment, attempt=attempt, order=order, amount=allocation.amount, reason=reason[:255]
    )
    if not waiting:
        _queue_grouping(attempt.pk, due_at=grouping_due_at(payment, attempt), now=timezone.now())
    return refund


def refund_record_unhonoured(
    *, payment: Payment, attempt: PaymentAttempt, amount: Decimal, reason: str
) -> RefundRequest:
    """Record the refund of everything captured on an attempt the shop could not honour, in a request of its
    own (nothing else is refunded from that attempt). Caller holds the payment and attempt locks. Returns the
    request, for the caller to send after commit."""
    request = RefundRequest.objects.create(payment=payment, attempt=attempt, amount=amount, reason=reason[:255])
    Refund.objects.create(
        payment=payment,
        attempt=attempt,
        request=request,
        kind=Refund.Kind.UNHONOURED,
        amount=amount,
        reason=reason[:255],
    )
    return request


def payment_refund_order(*, order: Order, reason: str = "") -> Refund:
    """Refund one order's share of its merged payment (pending): it goes to the rail with the shares that
    fall due with it, and completes on the rail's word."""
    with locking.transaction():
        return refund_record(order=order, reason=reason)


# --- Grouping ----------------------------------------------------------------------------------------------


def grouping_delay(*, sent: int, limit: int | None, window: timedelta, more_to_come: bool) -> timedelta | None:
    """How long the first share waiting for a request waits for others to join it, on an attempt that has
    had `sent` requests of the `limit` its rail allows; None when it has none left.

    Without a limit, or when no other share of the payment can still come, one window. With a limit, the
    window while many requests are left; then, for the last RESERVE of them, a window doubled for each
    request fewer; the last request waits `PAYMENT_REFUND_LAST_REQUEST_WAIT_HOURS`, or until every share of
    the payment is waiting, so that it can carry everything still to come.
    """
    if limit is None:
        return window
    left = limit - sent
    if left <= 0:
        return None
    if not more_to_come:
        return window
    if left == 1:
        return timedelta(hours=float(settings.PAYMENT_REFUND_LAST_REQUEST_WAIT_HOURS))
    reserve = max(1, min(MAX_RESERVE, limit // 5))
    if left > reserve:
        return window
    return window * (1 << (reserve - left + 1))


def grouping_due_at(payment: Payment, attempt: PaymentAttempt) -> datetime:
    """When the shares of `attempt` now waiting go to its rail as one request. Caller holds the payment lock.

    Never sooner than one window after the attempt's last request: WeChat Pay wants a minute between two
    refund requests of one payment. If the rail has no request left, they are due now (and are failed).
    """
    window = timedelta(seconds=settings.PAYMENT_REFUND_GROUPING_SECONDS)
    requests = attempt.refund_requests.aggregate(sent=Count("pk"), last=Max("created_at"))
    first = _waiting_shares(attempt).aggregate(first=Min("created_at"))["first"] or timezone.now()
    delay = grouping_delay(
        sent=requests["sent"],
        limit=get_provider(attempt.provider).max_refunds_per_payment,
        window=window,
        more_to_come=payment.refundable_amount > 0,
    )
    if delay is None:
        return first
    due_at = first + delay
    if requests["last"] is not None:
        due_at = max(due_at, requests["last"] + window)
    return due_at


def refunds_group(*, attempt_id: int, now: datetime | None = None, requeue: bool = True) -> RefundRequest | None:
    """Gather every share of the attempt still waiting into one request, if they are due, and queue asking
    the rail for it (`refund_request_send`). Not due yet: queue this again for when they are (unless
    `requeue` is off: the sweeper, which comes by again anyway). Returns the request made, if any."""
    now = now or timezone.now()
    payment_id = PaymentAttempt.objects.values_list("payment_id", flat=True).get(pk=attempt_id)
    with locking.transaction():
        payment = locking.lock_one(Payment.objects.filter(pk=payment_id))
        attempt = locking.lock_one(PaymentAttempt.objects.filter(pk=attempt_id))
        shares = locking.lock_all(_waiting_shares(attempt))
        if not shares:
            return None
        due_at = grouping_due_at(payment, attempt)
        if due_at > now:
            if requeue:
                _queue_grouping(attempt_id, due_at=due_at, now=now)
            return None
        limit = get_provider(attempt.provider).max_refunds_per_payment
        if limit is not None and attempt.refund_requests.count() >= limit:
            # Only a race with the check in refund_record gets here: the rail would refuse a new request.
            reason = str(messages.REFUND_REQUESTS_USED_UP).format(rail=attempt.provider, limit=limit)
            Refund.bulk_set_status(shares, Refund.Status.FAILED, note=reason)
            _flag(payment, reason)
            return None
        reasons = {share.reason for share in shares}
        request = RefundRequest.objects.create(
            payment=payment,
            attempt=attempt,
            amount=sum((share.amount for share in shares), Decimal(0)),
            reason=reasons.pop() if len(reasons) == 1 else "",
        )
        Refund.objects.filter(pk__in=[share.pk for share in shares]).update(request=request, updated_at=now)
        queue_task(SEND_TASK, request.pk)
    logger.info("refund request %s carries %d refunds of %s", request.reference, len(shares), request.amount)
    return request


def _queue_grouping(attempt_id: int, *, due_at: datetime, now: datetime) -> None:
    wait = min(max(due_at - now, timedelta(0)), GROUPING_LOOK_AGAIN_AFTER)
    queue_task(GROUP_TASK, attempt_id, delay=wait.total_seconds())


def _waiting_shares(attempt: PaymentAttempt) -> QuerySet[Refund]:
    return attempt.refunds.filter(kind=Refund.Kind.SHARE, status=Refund.Status.PENDING, request__isnull=True)


# --- Asking the rail ---------------------------------------------------------------------------------------


def refund_request_send(*, request_id: int) -> RefundRequest:
    """Ask the rail for a recorded request, holding no lock; safe to repeat (the reference is the key).

    A refusal fails the request and its refunds and raises PaymentError; an unreachable rail raises
    ProviderUnavailable and leaves it pending, to be asked again with the same number (the task's retries,
    then `refunds_request_unanswered`). A rail whose signed answer says the money moved has it applied at once.
    """
    request = RefundRequest.objects.select_related("attempt").get(pk=request_id)
    if request.status != RefundRequest.Status.PENDING:
        return request
    provider = get_provider(request.attempt.provider)
    try:
        answer = provider.refund(request, notify_url=provider_notify_url(provider.name))
    except ProviderUnavailable as unavailable:
        logger.warning(
            "refund request %s: %s unavailable (%s); asked again later", request.reference, provider.name, unavailable
        )
        raise
    except ProviderError as refused:
        reason = str(messages.GATEWAY_REFUSED_REFUND).format(reason=refused)
        refund_request_fail(request_id=request_id, reason=reason)
        raise PaymentError(reason) from None
    now = timezone.now()
    request.provider_reference = answer.provider_reference[:64] or request.provider_reference
    request.requested_at = request.requested_at or now
    acknowledged = {"provider_reference": request.provider_reference, "requested_at": request.requested_at}
    RefundRequest.objects.filter(pk=request_id).update(**acknowledged, updated_at=now)
    Refund.objects.filter(request_id=request_id).update(**acknowledged, updated_at=now)
    if answer.succeeded:
        refund_request_confirm(request_id=request_id, note="the rail's answer says the money moved")
        request.refresh_from_db()
    return request


def request_committed_refund(request_id: int) -> None:
    """Ask the rail for a request that a committed change recorded. That change (and the answer to the rail's
    notification) stands whatever happens here: a refusal leaves the request failed and the payment flagged,
    anything else leaves it pending for `refunds_request_unanswered` to ask again."""
    try:
        refund_request_send(request_id=request_id)
    except PaymentError as refused:
        logger.error("refund request %s refused by the rail: %s", request_id, refused)
    except Exception:
        logger.exception("refund request %s could not be made now; it is asked again later", request_id)


def refunds_request_unanswered(*, now: datetime | None = None) -> int:
    """The backstop of the tasks: group shares whose grouping is overdue, ask again for requests the rail
    never answered (unreachable, or the asking process died), and ask the rail about requests it acknowledged
    but never confirmed. Returns how many requests were made, asked for or asked about."""
    now = now or timezone.now()
    asked = 0
    overdue = (
        Refund.objects.filter(kind=Refund.Kind.SHARE, status=Refund.Status.PENDING, request__isnull=True)
        .filter(created_at__lte=now - REFUND_REQUEST_RETRY_AFTER)
        .values_list("attempt_id", flat=True)
        .distinct()
    )
    for attempt_id in list(overdue[:SWEEP_LIMIT]):
        # Grouping is due a window after the first share; the task that should have done it was lost.
        if refunds_group(attempt_id=attempt_id, now=now - REFUND_REQUEST_RETRY_AFTER, requeue=False) is not None:
            asked += 1
    pending = RefundRequest.objects.filter(status=RefundRequest.Status.PENDING)
    unanswered = pending.filter(requested_at__isnull=True, created_at__lte=now - REFUND_REQUEST_RETRY_AFTER)
    for request_id in unanswered.order_by("pk").values_list("pk", flat=True)[:SWEEP_LIMIT]:
        request_committed_refund(request_id)
        asked += 1
    unconfirmed = pending.filter(requested_at__lte=now - REFUND_QUERY_AFTER, updated_at__lte=now - REFUND_QUERY_AFTER)
    for request_id in unconfirmed.order_by("pk").values_list("pk", flat=True)[:SWEEP_LIMIT]:
        refund_query(request_id=request_id)
        asked += 1
    return asked


def refund_query(*, request_id: int) -> str:
    """Ask the rail what became of a request it acknowledged, and apply a final answer."""
    request = RefundRequest.objects.select_related("attempt").get(pk=request_id)
    if request.status != RefundRequest.Status.PENDING:
        return f"already {request.status}"
    try:
        state = get_provider(request.attempt.provider).query_refund(request)
    except (ProviderUnavailable, ProviderError) as error:
        state = f"not answered ({error})"
    if state == "succeeded":
        return refund_request_confirm(request_id=request_id, note="the rail's query says it succeeded")
    if state == "failed":
        return refund_request_fail(request_id=request_id, reason=str(messages.RAIL_FAILED_REFUND))
    # Asked about again REFUND_QUERY_AFTER from now.
    RefundRequest.objects.filter(pk=request_id).update(updated_at=timezone.now())
    return f"rail says {state}"


# --- Applying the rail's word ------------------------------------------------------------------------------


def refund_request_confirm(*, request_id: int, note: str) -> str:
    """The rail says the request's money moved: apply it, in a transaction of its own."""
    batch_id, payment_id = (
        RefundRequest.objects.filter(pk=request_id).values_list("payment__batch_id", "payment_id").get()
    )
    with locking.transaction():
        locking.lock_one(Batch.objects.filter(pk=batch_id))
        payment = locking.lock_one(Payment.objects.filter(pk=payment_id))
        return refund_apply_success(payment, RefundRequest.objects.get(pk=request_id), note=note)


def refund_request_fail(*, request_id: int, reason: str) -> str:
    """The rail refused the request, or says it failed: it and its refunds are failed here, and its payment
    flagged for staff."""
    payment_id = RefundRequest.objects.filter(pk=request_id).values_list("payment_id", flat=True).get()
    with locking.transaction():
        payment = locking.lock_one(Payment.objects.filter(pk=payment_id))
        return refund_apply_failure(payment, RefundRequest.objects.get(pk=request_id), reason=reason)


def refund_apply_success(payment: Payment, request: RefundRequest, *, note: str = "the rail confirmed it") -> str:
    """The rail confirms a request: the money of every refund it carries is back with the customer. Caller
    holds the batch and payment locks."""
    attempt = locking.lock_one(PaymentAttempt.objects.filter(pk=request.attempt_id))
    request = locking.lock_one(RefundRequest.objects.filter(pk=request.pk))
    if request.status == RefundRequest.Status.SUCCEEDED:
        return "refund already applied"
    carried = request.refunds.exclude(status=Refund.Status.SUCCEEDED)
    order_ids = [order_id for order_id in carried.values_list("order_id", flat=True) if order_id is not None]
    locking.lock_all(Order.objects.filter(pk__in=order_ids))
    for refund in carried.filter(order__isnull=False).only("order_id", "reason").order_by("order_id"):
        assert refund.order_id is not None
        order_services.order_mark_refunded(order_id=refund.order_id, note=refund.reason or "refunded")
    refunds = locking.lock_all(carried)
    Refund.bulk_set_status(refunds, Refund.Status.SUCCEEDED, note=f"{note} (request {request.reference})")
    request.set_status(RefundRequest.Status.SUCCEEDED, note=note)
    amount = sum((refund.amount for refund in refunds), Decimal(0))
    attempt.refunded_amount += amount
    attempt.save(update_fields=["refunded_amount", "updated_at"])
    shares = sum((refund.amount for refund in refunds if refund.kind == Refund.Kind.SHARE), Decimal(0))
    if not shares:
        # An unhonoured capture went back. The payment keeps its status: paid by another attempt, or closed
        # (expired, cancelled); this attempt's own refunded amount says what it gave back.
        if payment.status in PAID:
            return f"refunded {amount} captured a second time"
        return f"refunded {amount} captured after the payment was {payment.status}"
    payment.refunded_amount += shares
    payment.set_status(
        Payment.Status.REFUNDED if payment.refunded_amount == payment.amount else Payment.Status.PARTIALLY_REFUNDED,
        note=f"refund request {request.reference} of {shares}",
        also=("refunded_amount",),
    )
    return f"refunded {amount}"


def refund_apply_failure(payment: Payment, request: RefundRequest, *, reason: str) -> str:
    """The rail refused or failed a request. Caller holds the payment lock. Its orders stay as they were
    (paid, or failed at their top-up): staff find the payment flagged."""
    request = locking.lock_one(RefundRequest.objects.filter(pk=request.pk))
    if request.status != RefundRequest.Status.PENDING:
        return f"ignored: refund was {request.status}"
    request.set_status(RefundRequest.Status.FAILED, note=reason)
    refunds = locking.lock_all(request.refunds.filter(status=Refund.Status.PENDING))
    Refund.bulk_set_status(refunds, Refund.Status.FAILED, note=reason)
    _flag(payment, str(messages.REFUND_FAILED_NOTE).format(reference=request.reference, reason=reason))
    return f"refund failed: {reason}"


def _flag(payment: Payment, note: str) -> None:
    payment.needs_attention = True
    # A note already there (paid too late, paid twice) says more than this one.
    payment.attention_note = payment.attention_note or note[:255]
    payment.save(update_fields=["needs_attention", "attention_note", "updated_at"])
    logger.error("payment %s: %s", payment.reference, payment.attention_note)
