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
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from orders import services as order_services
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
    """Paid recharge orders start fulfilling. Caller holds the batch lock (inside the payment's transaction)."""
    order_services.orders_set_status(orders, Order.Status.FULFILLING, note="top-up started")
    return Fulfilment.objects.bulk_create([Fulfilment(order=order) for order in orders], ignore_conflicts=True)


def fulfilment_attempt(*, order_id: int) -> NextStep:
    with transaction.atomic():
        fulfilment = Fulfilment.objects.select_for_update().select_related("order").get(order_id=order_id)
        if fulfilment.status in (Fulfilment.Status.SUCCEEDED, Fulfilment.Status.FAILED):
            return FINISHED
        if fulfilment.status == Fulfilment.Status.UNKNOWN:
            return NextStep(QUERY)  # the last top-up may have gone through: find out before trying again
        if (
            fulfilment.status == Fulfilment.Status.IN_PROGRESS
            and timezone.now() - fulfilment.updated_at < STALE_ATTEMPT
        ):
            return FINISHED  # a redelivered task while the first is still talking to the upstream
        fulfilment.status = Fulfilment.Status.IN_PROGRESS
        fulfilment.attempts += 1
        fulfilment.save(update_fields=["status", "attempts", "updated_at"])
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
    with transaction.atomic():
        fulfilment = Fulfilment.objects.select_for_update().select_related("order").get(order_id=order_id)
        refunded = fulfilment.order.refunds.exclude(status="failed").exists()
        if fulfilment.status != Fulfilment.Status.FAILED or refunded:
            status = _("refunded") if refunded else fulfilment.get_status_display()
            raise FulfilmentError(str(messages.CANNOT_RETRY).format(status=status))
        fulfilment.status = Fulfilment.Status.PENDING
        fulfilment.attempts = 0
        fulfilment.save(update_fields=["status", "attempts", "updated_at"])


def _settle(order_id: int, expected_status: str, call: str, result: TopUpResult) -> NextStep:
    with transaction.atomic():
        fulfilment = Fulfilment.objects.select_for_update().select_related("order").get(order_id=order_id)
        UpstreamAttempt.objects.create(
            fulfilment=fulfilment,
            call=call,
            outcome=result.outcome,
            reference=result.reference,
            message=result.message[:255],
        )
        if fulfilment.status != expected_status:
            return FINISHED  # settled meanwhile by a redelivered task
        if result.outcome == Outcome.SUCCESS:
            fulfilment.status, fulfilment.upstream_reference, fulfilment.last_error = (
                Fulfilment.Status.SUCCEEDED,
                result.reference,
                "",
            )
            fulfilment.save(update_fields=["status", "upstream_reference", "last_error", "updated_at"])
            order = Order.objects.select_for_update().get(pk=order_id)
            order.set_status(Order.Status.FULFILLED, note=f"topped up: {result.reference}")
            return FINISHED
        if result.outcome == Outcome.UNKNOWN:
            fulfilment.status, fulfilment.last_error = Fulfilment.Status.UNKNOWN, result.message[:255]
            fulfilment.queries += call == UpstreamAttempt.Call.QUERY
            fulfilment.save(update_fields=["status", "last_error", "queries", "updated_at"])
            return NextStep(QUERY, settings.RECHARGE_QUERY_DELAY_SECONDS)
        # The upstream says the account was not credited: try again, or give up and refund.
        fulfilment.last_error = result.message[:255]
        if fulfilment.attempts < settings.RECHARGE_MAX_ATTEMPTS:
            fulfilment.status = Fulfilment.Status.PENDING
            fulfilment.save(update_fields=["status", "last_error", "updated_at"])
            return NextStep(RETRY, _retry_delay(fulfilment.attempts))
        fulfilment.status = Fulfilment.Status.FAILED
        fulfilment.save(update_fields=["status", "last_error", "updated_at"])
        _refund(fulfilment, result.message)
        return FINISHED


def _refund(fulfilment: Fulfilment, reason: str) -> None:
    try:
        payment_services.payment_refund_order(
            order=fulfilment.order, reason=str(messages.UPSTREAM_FAILED).format(reason=reason)[:255]
        )
    except payment_services.PaymentError as refused:
        # Left failed and visible to staff, who can retry the top-up or refund by hand.
        logger.error("order %s: automatic refund refused: %s", fulfilment.order.number, refused)
        fulfilment.last_error = f"refund refused: {refused}"[:255]
        fulfilment.save(update_fields=["last_error", "updated_at"])


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
