"""A batch's one merged payment: recorded when placing ends, cancelled with its batch, expired when unpaid."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from orders import locking
from orders import services as order_services
from orders.models import Batch, Order
from payments.models import Payment, PaymentAllocation
from payments.services.attempts import attempts_close_open, payment_reconcile
from payments.services.outcomes import PaymentError

if TYPE_CHECKING:
    from datetime import datetime


def payment_create_for_batch(*, batch: Batch, orders: list[Order]) -> Payment:
    """Record the one merged payment for a batch's placed orders (no rail is asked: see attempt_start).

    Inside the caller's transaction, with the batch locked; the one-to-one on `batch` makes a second
    payment impossible even without the lock.
    """
    existing = Payment.objects.filter(batch=batch).first()
    if existing is not None:
        return existing
    if not orders:
        raise PaymentError(f"batch {batch.pk} has no placed orders to pay for")
    payment = Payment.objects.create(
        batch=batch,
        owner_id=batch.owner_id,
        amount=sum((order.amount for order in orders), Decimal("0")),
        currency=settings.SHOP_CURRENCY,
        expires_at=timezone.now() + timedelta(minutes=settings.PAYMENT_EXPIRY_MINUTES),
    )
    PaymentAllocation.objects.bulk_create(
        [PaymentAllocation(payment=payment, order=order, amount=order.amount) for order in orders],
        batch_size=1000,
    )
    return payment


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
