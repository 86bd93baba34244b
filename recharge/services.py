"""Fulfilment of paid recharge orders: top up through the upstream provider, retry with backoff, settle
unknown outcomes by querying, and refund the order's share when the top-up finally fails.

Each step records what comes next in the same transaction as its outcome, as a task in the outbox
(orders/outbox.py): top up again after a delay, ask the upstream what happened after a delay, or nothing.
The database row of the fulfilment is the source of truth; the upstream's idempotency key (the order
number) makes a repeated top-up harmless. Each function returns what it did, for the task's log.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from orders import locking
from orders import services as order_services
from orders.billing import untranslated
from orders.models import Batch, Order
from orders.outbox import queue_task
from payments import services as payment_services
from payments.models import Refund
from recharge import messages
from recharge.models import Fulfilment, FulfilmentStatusChange, UpstreamAttempt
from recharge.upstream import Outcome, TopUpResult, get_upstream

logger = logging.getLogger(__name__)

# Named, not imported: tasks import services, never the reverse.
TOP_UP_TASK = "recharge.tasks.fulfil_order"
QUERY_TASK = "recharge.tasks.query_fulfilment"


class FulfilmentError(Exception):
    pass


class RetriedMeanwhile(Exception):
    """Staff retried the top-up while its refund was being recorded: the refund is rolled back."""


def fulfilment_start(*, orders: list[Order]) -> list[Fulfilment]:
    """Paid recharge orders start fulfilling. Inside the payment's transaction, the orders locked."""
    Order.bulk_set_status(orders, Order.Status.FULFILLING, note="top-up started")
    fulfilments = Fulfilment.objects.bulk_create([Fulfilment(order=order) for order in orders], ignore_conflicts=True)
    for order in orders:
        queue_task(TOP_UP_TASK, order.pk)
    return fulfilments


def fulfilment_attempt(*, order_id: int) -> str:
    with locking.transaction():
        fulfilment = locking.lock_one(Fulfilment.objects.select_related("order").filter(order_id=order_id))
        if fulfilment.status in (Fulfilment.Status.SUCCEEDED, Fulfilment.Status.FAILED):
            return "already settled"
        if fulfilment.status == Fulfilment.Status.UNKNOWN:
            # The last top-up may have gone through: find out before trying again.
            queue_task(QUERY_TASK, order_id)
            return "query first"
        if (
            fulfilment.status == Fulfilment.Status.IN_PROGRESS
            # An attempt "in progress" longer than the re-drive delay died with its worker; take over.
            and timezone.now() - fulfilment.updated_at < timedelta(seconds=settings.RECHARGE_REDRIVE_AFTER_SECONDS)
        ):
            return "in progress elsewhere"  # a redelivered task while the first still talks to the upstream
        # The attempt is logged as it starts, with the counter: a worker that dies during the call leaves an
        # attempt without an answer in the log, and the counter still agrees with the log.
        fulfilment.attempts += 1
        fulfilment.set_status(Fulfilment.Status.IN_PROGRESS, note=f"attempt {fulfilment.attempts}", also=("attempts",))
        attempt = UpstreamAttempt.objects.create(fulfilment=fulfilment, call=UpstreamAttempt.Call.TOP_UP)
    order = fulfilment.order
    # Outside the transaction: no row lock is held while the upstream takes its time.
    result = get_upstream().top_up(
        idempotency_key=order.number, account=_account(order), amount=order.amount, kind=order.kind
    )
    return _settle(order_id, Fulfilment.Status.IN_PROGRESS, result, attempt=attempt)


def fulfilment_query(*, order_id: int) -> str:
    fulfilment = Fulfilment.objects.select_related("order").get(order_id=order_id)
    if fulfilment.status != Fulfilment.Status.UNKNOWN:
        return "already settled"
    result = get_upstream().query(idempotency_key=fulfilment.order.number)
    return _settle(order_id, Fulfilment.Status.UNKNOWN, result)


def fulfilment_retry(*, order_id: int, by: str = "staff") -> None:
    """Staff try a failed top-up again, with a fresh round of attempts (admin action).

    A top-up that fails for good is refunded at once, so this applies only where that refund was refused (the
    gateway said no, or the payment could not be refunded): the order is still unsettled, and staff either fix
    what made the top-up fail and retry it here, or refund the order by hand. A retry that fails for good again is
    refunded automatically again. The fulfilment lock serialises this with `fulfilment_refund`: never both.
    """
    with locking.transaction():
        fulfilment = locking.lock_one(Fulfilment.objects.select_related("order").filter(order_id=order_id))
        refunded = fulfilment.order.refunds.exclude(status="failed").exists()
        if fulfilment.status != Fulfilment.Status.FAILED or refunded:
            status = _("refunded") if refunded else fulfilment.get_status_display()
            raise FulfilmentError(str(messages.CANNOT_RETRY).format(status=status))
        # The counters go on counting every call (they agree with the attempt log); the limit moves instead,
        # to RECHARGE_MAX_ATTEMPTS more than made so far.
        fulfilment.extra_attempts = fulfilment.attempts
        fulfilment.last_error = ""
        fulfilment.set_status(
            Fulfilment.Status.PENDING, note=f"retried by {by}"[:255], also=("extra_attempts", "last_error")
        )
        queue_task(TOP_UP_TASK, order_id)


def _settle(order_id: int, expected_status: str, result: TopUpResult, *, attempt: UpstreamAttempt | None = None) -> str:
    """Apply the upstream's answer: to the top-up `attempt` logged when it started, or to a status query."""
    batch_id = Order.objects.filter(pk=order_id).values_list("batch_id", flat=True).get()
    with locking.transaction():
        # The batch first: whether this was the last of its orders still being fulfilled (its completion
        # receipt is then due) is decided under its lock, so two orders settling at once cannot both miss it.
        locking.lock_one(Batch.objects.filter(pk=batch_id))
        order = locking.lock_one(Order.objects.filter(pk=order_id))
        fulfilment = locking.lock_one(Fulfilment.objects.filter(order_id=order_id))
        answer = {"outcome": result.outcome, "reference": result.reference, "message": result.message[:255]}
        if attempt is not None:
            UpstreamAttempt.objects.filter(pk=attempt.pk).update(**answer)
        else:
            UpstreamAttempt.objects.create(fulfilment=fulfilment, call=UpstreamAttempt.Call.QUERY, **answer)
            # Every logged query is counted, also one whose answer came too late to matter.
            fulfilment.queries += 1
        if fulfilment.status != expected_status:
            fulfilment.save(update_fields=["queries", "updated_at"])
            return "already settled"  # meanwhile, by a redelivered task
        if result.outcome == Outcome.SUCCESS:
            fulfilment.upstream_reference, fulfilment.last_error = result.reference, ""
            fulfilment.set_status(
                Fulfilment.Status.SUCCEEDED,
                note=f"topped up: {result.reference}",
                also=("upstream_reference", "last_error", "queries"),
            )
            order_services.order_mark_fulfilled(order=order, note=f"topped up: {result.reference}")
            return "topped up"
        fulfilment.last_error = result.message[:255]
        if result.outcome == Outcome.UNKNOWN:
            fulfilment.set_status(
                Fulfilment.Status.UNKNOWN, note=result.message, also=("last_error", "queries", "next_step_at")
            )
            _queue_next(fulfilment, QUERY_TASK, delay=settings.RECHARGE_QUERY_DELAY_SECONDS)
            return "outcome unknown; query queued"
        # The upstream says the account was not credited: try again, or give up and refund.
        if fulfilment.attempts < fulfilment.attempt_limit:
            _queue_next(fulfilment, TOP_UP_TASK, delay=_retry_delay(fulfilment.attempts))
            fulfilment.set_status(
                Fulfilment.Status.PENDING, note=result.message, also=("last_error", "queries", "next_step_at")
            )
            return "failed; retry queued"
        fulfilment.set_status(Fulfilment.Status.FAILED, note=result.message, also=("last_error", "queries"))
    # The failure is committed: the refund is recorded and requested on its own (the payment is locked
    # before the order there). If this process dies first, `fulfilments_to_refund` finds the fulfilment.
    fulfilment_refund(order_id=order_id)
    return "failed for good; refunded"


def fulfilment_refund(*, order_id: int) -> None:
    """Refund the share of an order whose top-up finally failed, unless a refund is already under way."""
    fulfilment = Fulfilment.objects.select_related("order").get(order_id=order_id)
    if fulfilment.status != Fulfilment.Status.FAILED:
        return
    # The shopper reads this reason (result page, receipt, export), each reader in their own language, and
    # without the upstream's own words, which staff find in the attempt log.
    reason = untranslated(messages.UPSTREAM_FAILED)
    try:
        with locking.transaction():
            # Asked for with the other shares of the payment that fall due meanwhile (one refund request).
            payment_services.refund_record(order=fulfilment.order, reason=reason)
            # Under the fulfilment's lock (after the payment's): a staff retry that got in first wins, and
            # one that comes later sees this refund.
            locked = locking.lock_one(Fulfilment.objects.filter(pk=fulfilment.pk))
            if locked.status != Fulfilment.Status.FAILED:
                raise RetriedMeanwhile
    except RetriedMeanwhile:
        return
    except payment_services.PaymentError as refused:
        # Left failed and visible to staff, who can retry the top-up or refund by hand.
        logger.error("order %s: automatic refund refused: %s", fulfilment.order.number, refused)
        Fulfilment.objects.filter(pk=fulfilment.pk).update(last_error=f"refund refused: {refused}"[:255])


def fulfilments_to_refund() -> list[int]:
    """Order ids of failed top-ups with no refund recorded: the refund after the failure was lost. One the
    rail refused (at once, or later when its grouped request was answered) is left to staff."""
    failed_at = (
        FulfilmentStatusChange.objects.filter(fulfilment=OuterRef(OuterRef("pk")), new_status=Fulfilment.Status.FAILED)
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    refused_since = Refund.objects.filter(
        order_id=OuterRef("order_id"), status=Refund.Status.FAILED, created_at__gte=Subquery(failed_at)
    )
    return list(
        Fulfilment.objects.filter(status=Fulfilment.Status.FAILED, order__status=Order.Status.FULFILLING)
        .exclude(order__refunds__status__in=["pending", "succeeded"])
        .exclude(last_error__startswith="refund refused")
        .exclude(Exists(refused_since))
        .values_list("order_id", flat=True)[:1000]
    )


def _account(order: Order) -> str:
    account: str = order.details.get("phone") or order.details.get("account", "")
    return account


def _retry_delay(attempts: int) -> float:
    """Exponential backoff between top-up attempts, capped."""
    delay: float = min(settings.RECHARGE_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), 600)
    return delay


def _queue_next(fulfilment: Fulfilment, task: str, *, delay: float) -> None:
    """Queue the next step with the outcome that called for it; the caller saves `next_step_at`."""
    fulfilment.next_step_at = timezone.now() + timedelta(seconds=delay)
    queue_task(task, fulfilment.order_id, delay=delay)


def fulfilments_redrive(*, overdue_by: timedelta) -> int:
    """Queue the next step of open fulfilments whose next step is overdue: its task was lost."""
    cutoff = timezone.now() - overdue_by
    stuck = (
        Fulfilment.objects.filter(
            status__in=[Fulfilment.Status.PENDING, Fulfilment.Status.IN_PROGRESS, Fulfilment.Status.UNKNOWN]
        )
        .filter(Q(next_step_at__lte=cutoff) | Q(next_step_at__isnull=True, updated_at__lte=cutoff))
        .values_list("order_id", "status")[:1000]
    )
    for order_id, status in stuck:
        queue_task(QUERY_TASK if status == Fulfilment.Status.UNKNOWN else TOP_UP_TASK, order_id)
    return len(stuck)
