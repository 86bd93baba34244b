"""The recharge app's part of the invariant checker (orders/invariants.py), registered in RechargeConfig.ready()."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.functions import Coalesce

from orders import registry
from orders.invariants import Context, Found, Invariant
from orders.models import Order
from orders.sql import quoted_table
from recharge.models import Fulfilment, SandboxTopUp
from recharge.order_types import RechargeFulfilment

OPEN = (Fulfilment.Status.PENDING, Fulfilment.Status.IN_PROGRESS, Fulfilment.Status.UNKNOWN)
REDRIVE_JOB = "recharge.tasks.redrive_fulfilments"


def _redrive_after_seconds() -> float:
    seconds: float = settings.RECHARGE_REDRIVE_AFTER_SECONDS
    return seconds


def _recharge_kinds() -> list[str]:
    return [order_type.kind for order_type in registry.all_types() if isinstance(order_type, RechargeFulfilment)]


def _placeholders(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _top_up_credited_twice(context: Context) -> Found:
    # The sandbox upstream's own ledger: `performed` counts the credits made under one idempotency key (the
    # order number). A real upstream keeps its ledger to itself; with one, this table is empty.
    return SandboxTopUp.objects.filter(performed__gt=1).values_list("idempotency_key")


def _fulfilment_disagrees_with_order(context: Context) -> Found:
    # Paying a top-up order starts its fulfilment in the same transaction, and the top-up's outcome and the
    # order's status are settled together. A top-up refunded by staff after it went through is no violation.
    kinds = _recharge_kinds()
    unpaid = [str(status) for status in (Order.Status.AWAITING_PAYMENT, *Order.RELEASED_STATUSES)]
    return (
        f"SELECT o.id FROM {quoted_table(Order)} o LEFT JOIN {quoted_table(Fulfilment)} f ON f.order_id = o.id "
        f"WHERE o.kind IN ({_placeholders(kinds)}) AND o.status NOT IN ({_placeholders(unpaid)}) AND ("
        " f.id IS NULL OR o.status = %s"
        " OR (o.status = %s AND f.status <> %s)"
        " OR (f.status = %s AND o.status NOT IN (%s, %s)))",
        [
            *kinds,
            *unpaid,
            str(Order.Status.PAID),
            str(Order.Status.FULFILLED),
            str(Fulfilment.Status.SUCCEEDED),
            str(Fulfilment.Status.SUCCEEDED),
            str(Order.Status.FULFILLED),
            str(Order.Status.REFUNDED),
        ],
    )


def _fulfilment_stuck(context: Context) -> Found:
    cutoff = context.redrive_cutoff(after_seconds=_redrive_after_seconds(), job=REDRIVE_JOB)
    # Overdue as the re-drive sees it: the next step's due time, or the last change when none is scheduled.
    due = Coalesce("next_step_at", "updated_at")
    return Fulfilment.objects.filter(status__in=OPEN).alias(due=due).filter(due__lte=cutoff).values_list("pk")


def _fulfilment_failed_not_refunded(context: Context) -> Found:
    # The re-drive job refunds a failed top-up whose refund was lost (recharge.services.fulfilments_to_refund).
    cutoff = context.redrive_cutoff(after_seconds=0, job=REDRIVE_JOB)
    return (
        Fulfilment.objects.filter(
            status=Fulfilment.Status.FAILED, order__status=Order.Status.FULFILLING, updated_at__lte=cutoff
        )
        .exclude(order__refunds__status__in=["pending", "succeeded"])
        .values_list("pk")
    )


INVARIANTS = [
    Invariant(
        "top_up_credited_twice",
        "top-ups (order numbers)",
        "the upstream credited one order's top-up more than once",
        _top_up_credited_twice,
    ),
    Invariant(
        "fulfilment_disagrees_with_order",
        "orders",
        "a paid top-up order has no fulfilment, or its fulfilment and its status disagree",
        _fulfilment_disagrees_with_order,
    ),
    Invariant(
        "fulfilment_stuck",
        "fulfilments",
        "a top-up has not moved for longer than its re-drive time",
        _fulfilment_stuck,
    ),
    Invariant(
        "fulfilment_failed_not_refunded",
        "fulfilments",
        "a top-up failed for good but its order's share is not being refunded",
        _fulfilment_failed_not_refunded,
    ),
]
