"""Status changes of whole batches after placing: cancel, expire, paid.

Lock order, everywhere: the batch, then its payment, then its orders. Taking them in one order means a
cancel racing a payment notification waits instead of deadlocking.
"""

from __future__ import annotations

from django.db import transaction

from orders import messages, registry
from orders.models import Batch, Order, OrderStatusChange
from payments import services as payment_services


class BatchError(Exception):
    """A lifecycle change that the batch's state does not allow; the message is for people."""


def orders_set_status(orders: list[Order], new_status: str, *, note: str = "") -> None:
    """Move many orders at once through the lifecycle, with one audit row each, in bulk."""
    changes = []
    for order in orders:
        if not order.can_transition(new_status):
            raise BatchError(f"order {order.number} cannot go from {order.status} to {new_status}")
        changes.append(OrderStatusChange(order=order, old_status=order.status, new_status=new_status, note=note))
        order.status = new_status
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(status=new_status)
    OrderStatusChange.objects.bulk_create(changes, batch_size=1000)


def batch_cancel(*, batch_id, owner) -> Batch:
    """The owner gives up an unpaid batch: its orders are cancelled and their stock released."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().filter(pk=batch_id, owner=owner).first()
        if batch is None:
            raise Batch.DoesNotExist
        if not batch.can_cancel():
            raise BatchError(str(messages.CANNOT_CANCEL).format(status=batch.get_status_display()))
        payment_services.payment_cancel_for_batch(batch=batch)
        _close_unpaid_orders(batch, Order.Status.CANCELLED, note="cancelled by the customer")
        batch.set_status(Batch.Status.CANCELLED, note="cancelled by the customer")
    return batch


def batch_expire(*, batch: Batch) -> None:
    """The batch's payment expired: its orders expire and release their stock. Caller holds the locks."""
    _close_unpaid_orders(batch, Order.Status.EXPIRED, note="payment expired")
    batch.set_status(Batch.Status.EXPIRED, note="payment expired")


def _close_unpaid_orders(batch: Batch, status: str, *, note: str) -> None:
    orders = list(batch.orders.select_for_update().filter(status=Order.Status.AWAITING_PAYMENT).order_by("pk"))
    for order in orders:
        registry.get(order.kind).release(order)
    orders_set_status(orders, status, note=note)
