"""Status changes after placing: cancel, close unpaid (cancelled, expired), paid, refunded.

Locks follow the order in orders/locking.py: the batch, then its payment (taken by the billing side), then
its orders.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from orders import billing, locking, messages, registry
from orders.models import Batch, Order, Receipt
from orders.services.receipts import batch_settle_check, receipt_due

if TYPE_CHECKING:
    from uuid import UUID

    from django.contrib.auth.models import User


class BatchError(Exception):
    """A lifecycle change that the batch's state does not allow; the message is for people."""


def batch_cancel(*, batch_id: UUID | str, owner: User) -> Batch:
    """The owner gives up an unpaid batch: its payment is cancelled, its orders too, their stock released."""
    with locking.transaction():
        batch = locking.lock_first(Batch.objects.filter(pk=batch_id, owner=owner))
        if batch is None:
            raise Batch.DoesNotExist
        if not batch.can_cancel():
            raise BatchError(str(messages.CANNOT_CANCEL).format(status=batch.get_status_display()))
        try:
            billing.billing().cancel_bill(batch=batch)
        except billing.BillingRefused as refused:
            raise BatchError(str(refused)) from None
        batch_close_unpaid(batch=batch, status=Batch.Status.CANCELLED, note="cancelled by the customer")
    return batch


def batch_close_unpaid(*, batch: Batch, status: str, note: str) -> None:
    """The batch will never be paid (cancelled, expired): close it and its orders, release stock.

    The caller holds the batch lock (and the payment's, when there is one).
    """
    order_status = Order.Status.EXPIRED if status == Batch.Status.EXPIRED else Order.Status.CANCELLED
    orders = locking.lock_all(batch.orders.filter(status=Order.Status.AWAITING_PAYMENT))
    for order in orders:
        registry.require(order.kind).release(order)
    Order.bulk_set_status(orders, order_status, note=note)
    batch.set_status(status, note=note)


def batch_mark_paid(*, batch: Batch) -> None:
    """The batch's payment succeeded: its orders are paid and each order type takes over.

    The caller holds the batch and payment locks; the types' after-payment work joins this transaction, and
    so does the payment receipt.
    """
    orders = locking.lock_all(batch.orders.filter(status=Order.Status.AWAITING_PAYMENT))
    Order.bulk_set_status(orders, Order.Status.PAID, note="payment succeeded")
    batch.set_status(Batch.Status.PAID, note="payment succeeded")
    by_kind: dict[str, list[Order]] = defaultdict(list)
    for order in orders:
        by_kind[order.kind].append(order)
    for kind, kind_orders in by_kind.items():
        registry.require(kind).after_payment(kind_orders)
    receipt_due(batch=batch, kind=Receipt.Kind.PAID)


def order_mark_fulfilled(*, order: Order, note: str) -> None:
    """The order's type delivered it (e.g. the top-up went through).

    The caller holds the locks of the order's batch and of the order (`order` is that locked row).
    """
    was = order.status
    if was != Order.Status.FULFILLED:
        order.set_status(Order.Status.FULFILLED, note=note)
    if was == Order.Status.FULFILLING:
        batch_settle_check(batch_id=order.batch_id)


def order_mark_refunded(*, order_id: int, note: str) -> Order:
    """The order's share came back to the customer. Inside the caller's locked transaction (batch locked)."""
    order = locking.lock_one(Order.objects.filter(pk=order_id))
    was = order.status
    if was != Order.Status.REFUNDED:
        order.set_status(Order.Status.REFUNDED, note=note)
    if was == Order.Status.FULFILLING:
        batch_settle_check(batch_id=order.batch_id)
    return order
