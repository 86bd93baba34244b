"""Status changes after placing: cancel, decline, expire, paid, refunded.

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
        batch_close_unpaid(batch=batch, status=Batch.Status.CANCELLED, note="cancelled by the customer")
    return batch


def batch_close_unpaid(*, batch: Batch, status: str, note: str) -> None:
    """The batch will never be paid (cancelled, declined, expired): close it and its orders, release stock.

    The caller holds the batch lock.
    """
    order_status = Order.Status.EXPIRED if status == Batch.Status.EXPIRED else Order.Status.CANCELLED
    orders = list(batch.orders.select_for_update().filter(status=Order.Status.AWAITING_PAYMENT).order_by("pk"))
    for order in orders:
        registry.get(order.kind).release(order)
    orders_set_status(orders, order_status, note=note)
    batch.set_status(status, note=note)


def batch_mark_paid(*, batch: Batch) -> None:
    """The batch's payment succeeded: its orders are paid and each order type takes over (delivery).

    The caller holds the batch and payment locks.
    """
    orders = list(batch.orders.select_for_update().filter(status=Order.Status.AWAITING_PAYMENT).order_by("pk"))
    orders_set_status(orders, Order.Status.PAID, note="payment succeeded")
    batch.set_status(Batch.Status.PAID, note="payment succeeded")
    by_kind: dict[str, list[Order]] = {}
    for order in orders:
        by_kind.setdefault(order.kind, []).append(order)
    for kind, kind_orders in by_kind.items():
        registry.get(kind).after_payment(kind_orders)


def order_mark_refunded(*, order_id, note: str) -> Order:
    order = Order.objects.select_for_update().get(pk=order_id)
    if order.status != Order.Status.REFUNDED:
        order.set_status(Order.Status.REFUNDED, note=note)
    return order
