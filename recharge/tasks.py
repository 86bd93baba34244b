"""Fulfilment tasks: thin and idempotent; each step's service queues the next one itself."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from recharge import services


@shared_task
def fulfil_order(order_id: int) -> str:
    return services.fulfilment_attempt(order_id=order_id)


@shared_task
def query_fulfilment(order_id: int) -> str:
    return services.fulfilment_query(order_id=order_id)


@shared_task
def redrive_fulfilments() -> int:
    """Periodic: fulfilments whose task was lost (worker died, broker restarted) are picked up again."""
    stuck = services.fulfilments_redrive(overdue_by=timedelta(seconds=settings.RECHARGE_REDRIVE_AFTER_SECONDS))
    unrefunded = services.fulfilments_to_refund()
    for order_id in unrefunded:
        services.fulfilment_refund(order_id=order_id)
    return stuck + len(unrefunded)
