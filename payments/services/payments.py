"""A batch's one merged payment: recorded when placing ends, cancelled with its batch, expired when unpaid."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection
from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone

from orders import locking
from orders import services as order_services
from orders.models import Batch, Order
from orders.sql import quoted_column, quoted_table
from payments.models import Payment, PaymentAllocation
from payments.services.attempts import attempts_close_open, payment_reconcile
from payments.services.outcomes import PaymentError

if TYPE_CHECKING:
    from datetime import datetime


def payment_create_for_batch(*, batch: Batch) -> Payment:
    """Record the one merged payment for a batch's placed orders (no rail is asked: see attempt_start).

    Inside the caller's transaction, with the batch locked; the one-to-one on `batch` makes a second
    payment impossible even without the lock. Set-based, so that its cost grows with the rows and not with
    Python objects: one aggregate, the payment, and one INSERT … SELECT for every order's allocation.
    """
    existing = Payment.objects.filter(batch=batch).first()
    if existing is not None:
        return existing
    placed = Order.objects.filter(batch=batch).aggregate(count=Count("pk"), amount=Sum("amount"))
    if not placed["count"]:
        raise PaymentError(f"batch {batch.pk} has no placed orders to pay for")
    payment = Payment.objects.create(
        batch=batch,
        owner_id=batch.owner_id,
        amount=placed["amount"],
        currency=settings.SHOP_CURRENCY,
        expires_at=timezone.now() + timedelta(minutes=settings.PAYMENT_EXPIRY_MINUTES),
    )
    _allocate_every_order(payment=payment, batch=batch)
    return payment


def _allocate_every_order(*, payment: Payment, batch: Batch) -> None:
    """Each order's allocation is its whole amount, so the allocations sum to the payment by construction."""
    allocation = ", ".join(quoted_column(PaymentAllocation, name) for name in ("payment", "order", "amount"))
    order = ", ".join(quoted_column(Order, name) for name in ("id", "amount"))
    batch_id = Order._meta.get_field("batch").get_db_prep_value(batch.pk, connection)  # a UUID is text on SQLite
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quoted_table(PaymentAllocation)} ({allocation}) SELECT %s, {order} "
            f"FROM {quoted_table(Order)} WHERE {quoted_column(Order, 'batch')} = %s",
            [payment.pk, batch_id],
        )


def payment_pay_url(payment: Payment) -> str:
    """Where people and integrators send the customer to pay: our page, which offers the rails' methods."""
    url: str = settings.SITE_URL + reverse("payments:pay", args=[payment.reference])
    return url


def payment_cancel_for_batch(*, batch: Batch) -> None:
    """The batch is being cancelled before payment: its pending payment can no longer be paid, and its open
    attempts are closed. The caller holds the batch lock."""
    payment = locking.lock_first(Payment.objects.filter(batch=batch))
    if payment is None:
        return
    if payment.status != Payment.Status.PENDING:
        raise PaymentError(f"payment {payment.reference} is {payment.status} and cannot be cancelled")
    payment.set_status(Payment.Status.CANCELLED, note="the customer cancelled the batch")
    attempts_close_open(payment=payment, note="the customer cancelled the batch")


def payment_expire(*, payment_id: int, now: datetime | None = None) -> str:
    """Expire an unpaid payment past its time: it, its orders and its batch become expired, its open attempts
    closed.

    The rails are asked first, so a payment whose notification was lost is applied, not expired.
    """
    outcome = payment_reconcile(payment_id=payment_id)
    now = now or timezone.now()
    with locking.transaction():
        batch = locking.lock_one(Batch.objects.filter(payment__pk=payment_id))
        payment = locking.lock_one(Payment.objects.filter(pk=payment_id))
        if payment.status != Payment.Status.PENDING or payment.expires_at is None or payment.expires_at > now:
            return outcome
        payment.set_status(Payment.Status.EXPIRED, note="not paid in time")
        attempts_close_open(payment=payment, note="the payment expired")
        order_services.batch_close_unpaid(batch=batch, status=Batch.Status.EXPIRED, note="payment expired")
    return "expired"
