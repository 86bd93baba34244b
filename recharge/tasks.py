"""Fulfilment tasks: thin, idempotent, driven by what the fulfilment row says comes next."""

from datetime import timedelta

from celery import shared_task

from recharge import services


def _schedule(order_id: int, step: services.NextStep) -> str:
    if step.action == services.RETRY:
        fulfil_order.apply_async((order_id,), countdown=step.delay)
    elif step.action == services.QUERY:
        query_fulfilment.apply_async((order_id,), countdown=step.delay)
    return step.action


@shared_task
def fulfil_order(order_id: int) -> str:
    return _schedule(order_id, services.fulfilment_attempt(order_id=order_id))


@shared_task
def query_fulfilment(order_id: int) -> str:
    return _schedule(order_id, services.fulfilment_query(order_id=order_id))


@shared_task
def redrive_fulfilments() -> int:
    """Periodic: fulfilments whose task was lost (worker died, broker restarted) are picked up again."""
    stuck = services.fulfilments_to_redrive(older_than=timedelta(minutes=5))
    for order_id, action in stuck:
        _schedule(order_id, services.NextStep(action))
    unrefunded = services.fulfilments_to_refund()
    for order_id in unrefunded:
        services.fulfilment_refund(order_id=order_id)
    return len(stuck) + len(unrefunded)
