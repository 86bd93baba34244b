"""Write operations of the payments app. The orders app hands placed batches over through
`payment_create_for_batch`; that call and its contract are final."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payments.models import Payment, PaymentAllocation


class PaymentError(Exception):
    """A payment operation that the rules do not allow."""


@transaction.atomic
def payment_create_for_batch(*, batch, orders) -> Payment:
    """Create the one merged payment for a batch's placed orders (idempotent per batch).

    The caller holds the batch row lock; the one-to-one on `batch` makes a second payment impossible
    even without it.
    """
    existing = Payment.objects.filter(batch=batch).first()
    if existing is not None:
        return existing
    orders = list(orders)
    if not orders:
        raise PaymentError(f"batch {batch.pk} has no placed orders to pay for")
    payment = Payment.objects.create(
        batch=batch,
        owner_id=batch.owner_id,
        amount=sum((order.amount for order in orders), start=0),
        currency=settings.SHOP_CURRENCY,
        expires_at=timezone.now() + timedelta(minutes=settings.PAYMENT_EXPIRY_MINUTES),
    )
    PaymentAllocation.objects.bulk_create(
        [PaymentAllocation(payment=payment, order=order, amount=order.amount) for order in orders],
        batch_size=1000,
    )
    return payment


def payment_cancel_for_batch(*, batch) -> None:
    """The batch is being cancelled before payment: its pending payment can no longer be paid."""
    payment = Payment.objects.select_for_update().filter(batch=batch).first()
    if payment is None:
        return
    if payment.status != Payment.Status.PENDING:
        raise PaymentError(f"payment {payment.reference} is {payment.status} and cannot be cancelled")
    payment.status = Payment.Status.CANCELLED
    payment.save(update_fields=["status", "updated_at"])
