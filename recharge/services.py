"""Fulfilment of paid recharge orders: top up through the upstream provider, retry with backoff, settle
unknown outcomes by querying, and refund the order's share when the top-up finally fails.

Each function returns the next step for the task layer: DONE, RETRY (top up again after a delay) or
QUERY (ask the upstream what happened, after a delay). The database row of the fulfilment is the source of truth; the
upstream's idempotency key (the order number) makes a repeated top-up harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from orders import locking
from orders.models import Order
from payments import services as payment_services
from recharge import messages
from recharge.models import Fulfilment, UpstreamAttempt
from recharge.upstream import Outcome, TopUpResult, get_upstream

logger = logging.getLogger(__name__)

DONE, RETRY, QUERY = "done", "retry", "query"


@dataclass(frozen=True)
class NextStep:
    action: str
    delay: float = 0


FINISHED = NextStep(DONE)
# An attempt that has been "in progress" this long died with its worker; another may take over.
STALE_ATTEMPT = timedelta(minutes=2)


class FulfilmentError(Exception):
    pass


def fulfilment_start(*, orders: list[Order]) -> list[Fulfilment]:
    """Paid recharge orders start fulfilling. Inside the payment's transaction, the orders locked."""
    Order.bulk_set_status(orders, Order.Status.FULFILLING, note="top-up started")
    return Fulfilment.objects.bulk_create([Fulfilment(order=order) for order in orders], ignore_conflicts=True)


def fulfilment_attempt(*, order_id: int) -> NextStep:
    with locking.transaction():
        fulfilment = locking.lock_one(Fulfilment.objects.select_related("order").filter(order_id=order_id))
        if fulfilment.status in (Fulfilment.Status.SUCCEEDED, Fulfilment.Status.FAILED):
            return FINISHED
        if fulfilment.status == Fulfilment.Status.UNKNOWN:
            return NextStep(QUERY)  # the last top-up may have gone through: find out before trying again
        if (
            fulfilment.status == Fulfilment.Status.IN_PROGRESS
            and timezone.now() - fulfilment.updated_at < STALE_ATTEMPT
        ):
            return FINISHED  # a redelivered task while the first is still talking to the upstream
        fulfilment.attempts += 1
        fulfilment.set_status(Fulfilment.Status.IN_PROGRESS, note=f"attempt {fulfilment.attempts}", also=("attempts",))
    order = fulfilment.order
    # Outside the transaction: no row lock is held while the upstream takes its time.
    result = get_upstream().top_up(
        idempotency_key=order.number, account=_account(order), amount=order.amount, kind=order.kind
    )
    return _settle(order_id, Fulfilment.Status.IN_PROGRESS, UpstreamAttempt.Call.TOP_UP, result)


def fulfilment_query(*, order_id: int) -> NextStep:
    fulfilment = Fulfilment.objects.select_related("order").get(order_id=order_id)
    if fulfilment.status != Fulfilment.Status.UNKNOWN:
        return FINISHED
    result = get_upstream().query(idempotency_key=fulfilment.order.number)
    return _settle(order_id, Fulfilment.Status.UNKNOWN, UpstreamAttempt.Call.QUERY, result)


def fulfilment_retry(*, order_id: int) -> None:
    """Staff retry a failed fulfilment whose refund has not gone through (admin action)."""
    with locking.transaction():
        fulfilment = locking.lock_one(Fulfilment.objects.select_related("order").filter(order_id=order_id))
        refunded = fulfilment.order.refunds.exclude(status="failed").exists()
        if fulfilment.status != Fulfilment.Status.FAILED or refunded:
            status = _("refunded") if refunded else fulfilment.get_status_display()
            raise FulfilmentError(str(messages.CANNOT_RETRY).format(status=status))
        fulfilment.attempts = 0
        fulfilment.set_status(Fulfilment.Status.PENDING, note="retried by staff", also=("attempts",))


def _settle(order_id: int, expected_status: str, call: str, result: TopUpResult) -> NextStep:
    with locking.transaction():
        order = locking.lock_one(Order.objects.filter(pk=order_id))
        fulfilment = locking.lock_one(Fulfilment.objects.filter(order_id=order_id))
        UpstreamAttempt.objects.create(
            fulfilment=fulfilment,
            call=call,
            outcome=result.outcome,
            reference=result.reference,
            message=result.message[:255],
        )
        if fulfilment.status != expected_status:
            return FINISHED  # settled meanwhile by a redelivered task
        if call == UpstreamAttempt.Call.QUERY:
            fulfilment.queries += 1
        if result.outcome == Outcome.SUCCESS:
            fulfilment.upstream_reference, fulfilment.last_error = result.reference, ""
            fulfilment.set_status(
                Fulfilment.Status.SUCCEEDED,
                note=f"topped up: {result.reference}",
                also=("upstream_reference", "last_error", "queries"),
            )
            order.set_status(Order.Status.FULFILLED, note=f"topped up: {result.reference}")
            return FINISHED
        fulfilment.last_error = result.message[:255]
        if result.outcome == Outcome.UNKNOWN:
            fulfilment.set_status(Fulfilment.Status.UNKNOWN, note=result.message, also=("last_error", "queries"))
            return NextStep(QUERY, settings.RECHARGE_QUERY_DELAY_SECONDS)
        # The upstream says the account was not credited: try again, or give up and refund.
        if fulfilment.attempts < settings.RECHARGE_MAX_ATTEMPTS:
            fulfilment.set_status(Fulfilment.Status.PENDING, note=result.message, also=("last_error", "queries"))
            return NextStep(RETRY, _retry_delay(fulfilment.attempts))
        fulfilment.set_status(Fulfilment.Status.FAILED, note=result.message, also=("last_error", "queries"))
    # The failure is committed: the refund is recorded and requested on its own (the payment is locked
    # before the order there). If this process dies first, `fulfilments_to_refund` finds the fulfilment.
    fulfilment_refund(order_id=order_id)
    return FINISHED


def fulfilment_refund(*, order_id: int) -> None:
    """Refund the share of an order whose top-up finally failed, unless a refund is already under way."""
    fulfilment = Fulfilment.objects.select_related("order").get(order_id=order_id)
    if fulfilment.status != Fulfilment.Status.FAILED:
        return
    reason = str(messages.UPSTREAM_FAILED).format(reason=fulfilment.last_error)[:255]
    try:
        with locking.transaction():
            refund = payment_services.refund_record(order=fulfilment.order, reason=reason)
        payment_services.refund_request(refund_id=refund.pk)
    except payment_services.PaymentError as refused:
        # Left failed and visible to staff, who can retry the top-up or refund by hand.
        logger.error("order %s: automatic refund refused: %s", fulfilment.order.number, refused)
        Fulfilment.objects.filter(pk=fulfilment.pk).update(last_error=f"refund refused: {refused}"[:255])


def fulfilments_to_refund() -> list[int]:
    """Order ids of failed top-ups with no refund recorded: the refund after the failure was lost."""
    return list(
        Fulfilment.objects.filter(status=Fulfilment.Status.FAILED, order__status=Order.Status.FULFILLING)
        .exclude(order__refunds__status__in=["pending", "succeeded"])
        .exclude(last_error__startswith="refund refused")
        .values_list("order_id", flat=True)[:1000]
    )


def _account(order: Order) -> str:
    return order.details.get("phone") or order.details.get("account", "")


def _retry_delay(attempts: int) -> float:
    """Exponential backoff between top-up attempts, capped."""
    return min(settings.RECHARGE_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), 600)


def fulfilments_to_redrive(*, older_than: timedelta) -> list[tuple[int, str]]:
    """Fulfilments whose task was lost: still open and untouched for a while. (order id, next step)."""
    cutoff = timezone.now() - older_than
    stuck = Fulfilment.objects.filter(
        status__in=[Fulfilment.Status.PENDING, Fulfilment.Status.IN_PROGRESS, Fulfilment.Status.UNKNOWN],
        updated_at__lte=cutoff,
    ).values_list("order_id", "status")
    return [(order_id, QUERY if status == Fulfilment.Status.UNKNOWN else RETRY) for order_id, status in stuck[:1000]]
