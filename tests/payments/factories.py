"""Factories for the payments app: a batch's merged payment in each state, its attempts, and refunds.

A payment is built for a batch whose orders it pays: its amount is the sum of their amounts, one
allocation per order, and the batch and its orders are in the state the payment's status implies
(succeeded: paid; partially refunded: the first order refunded; refunded: every order refunded;
expired: expired; cancelled or failed: cancelled). A paid payment has the sandbox attempt that paid it; an
unpaid one none (the shopper never went to pay). No audit rows, no gateway call.

    PaymentFactory()                               pending, for a new 2-row batch awaiting payment
    PaymentFactory(succeeded=True, batch__row_count=3)
    PaymentFactory(partially_refunded=True)        one succeeded refund, of the first order's share
    PaymentAttemptFactory(payment=payment)         an open sandbox attempt (the sandbox has no charge for it)
    RefundFactory()                                a pending refund of an order of a succeeded payment
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import factory
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from orders.models import Batch, Order
from payments.models import Payment, PaymentAllocation, PaymentAttempt, Refund, RefundRequest
from tests.factories import ModelFactory
from tests.orders.factories import BatchFactory

BATCH_STATUS_OF_PAYMENT = {
    Payment.Status.PENDING: Batch.Status.AWAITING_PAYMENT,
    Payment.Status.SUCCEEDED: Batch.Status.PAID,
    Payment.Status.PARTIALLY_REFUNDED: Batch.Status.PAID,
    Payment.Status.REFUNDED: Batch.Status.PAID,
    Payment.Status.EXPIRED: Batch.Status.EXPIRED,
    Payment.Status.CANCELLED: Batch.Status.CANCELLED,
    # Declined before payments took attempts (a decline then cancelled the batch); now one leaves it payable.
    Payment.Status.FAILED: Batch.Status.CANCELLED,
}
PAID = {Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED}


def payment_status_of_batch(batch_status: str) -> str:
    statuses: dict[str, str] = {
        Batch.Status.AWAITING_PAYMENT: Payment.Status.PENDING,
        Batch.Status.PAID: Payment.Status.SUCCEEDED,
        Batch.Status.CANCELLED: Payment.Status.CANCELLED,
        Batch.Status.EXPIRED: Payment.Status.EXPIRED,
    }
    return statuses[batch_status]


def _orders(payment) -> list[Order]:
    return list(Order.objects.filter(batch=payment.batch).order_by("row_index"))


class PaymentFactory(ModelFactory[Payment]):
    class Meta:
        model = Payment
        skip_postgeneration_save = True

    status = Payment.Status.PENDING
    batch = factory.SubFactory(
        BatchFactory,
        status=factory.LazyAttribute(lambda batch: BATCH_STATUS_OF_PAYMENT[batch.factory_parent.status]),
        # This factory is the batch's payment.
        payment=False,
    )
    owner = factory.SelfAttribute("batch.owner")
    amount = factory.LazyAttribute(lambda payment: sum(order.amount for order in _orders(payment)))
    currency = settings.SHOP_CURRENCY
    paid_at = factory.LazyAttribute(lambda payment: timezone.now() if payment.status in PAID else None)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=settings.PAYMENT_EXPIRY_MINUTES))

    class Params:
        pending = factory.Trait(status=Payment.Status.PENDING)
        succeeded = factory.Trait(status=Payment.Status.SUCCEEDED)
        partially_refunded = factory.Trait(status=Payment.Status.PARTIALLY_REFUNDED)
        refunded = factory.Trait(status=Payment.Status.REFUNDED)
        failed = factory.Trait(status=Payment.Status.FAILED)
        expired = factory.Trait(
            status=Payment.Status.EXPIRED,
            expires_at=factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=1)),
        )
        cancelled = factory.Trait(status=Payment.Status.CANCELLED)

    @factory.post_generation
    def allocations(payment: Payment, create: bool, extracted: Any, **kwargs: Any) -> None:
        if not create:
            return
        PaymentAllocation.objects.bulk_create(
            PaymentAllocation(payment=payment, order=order, amount=order.amount) for order in _orders(payment)
        )

    @factory.post_generation
    def attempts(payment: Payment, create: bool, extracted: Any, **kwargs: Any) -> None:
        """The attempt that paid a paid payment (a failed one was declined on its attempt)."""
        if not create:
            return
        if payment.status in PAID:
            PaymentAttemptFactory(payment=payment, status=PaymentAttempt.Status.SUCCEEDED)
        elif payment.status == Payment.Status.FAILED:
            PaymentAttemptFactory(payment=payment, status=PaymentAttempt.Status.DECLINED)

    @factory.post_generation
    def refunds(payment: Payment, create: bool, extracted: Any, **kwargs: Any) -> None:
        """A refunded payment has a succeeded refund per order; a partially refunded one, of its first order."""
        if not create or payment.status not in (Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED):
            return
        orders = _orders(payment)
        if payment.status == Payment.Status.PARTIALLY_REFUNDED:
            orders = orders[:1]
        for order in orders:
            RefundFactory(payment=payment, order=order, succeeded=True)
        payment.refunded_amount = sum(order.amount for order in orders)
        payment.save(update_fields=["refunded_amount"])


class PaymentAttemptFactory(ModelFactory[PaymentAttempt]):
    """An attempt recorded here only: open unless told otherwise, with no charge at the sandbox."""

    class Meta:
        model = PaymentAttempt

    payment = factory.SubFactory(PaymentFactory)
    provider = "sandbox"
    method = "page"
    amount = factory.SelfAttribute("payment.amount")
    currency = factory.SelfAttribute("payment.currency")
    expires_at = factory.SelfAttribute("payment.expires_at")
    status = PaymentAttempt.Status.OPEN


class RefundRequestFactory(ModelFactory[RefundRequest]):
    """The request that carries a refund to its rail (RefundFactory makes one per refund, as its own)."""

    class Meta:
        model = RefundRequest

    payment = factory.SubFactory(PaymentFactory, succeeded=True)
    attempt = factory.LazyAttribute(
        lambda request: request.payment.attempts.get(status=PaymentAttempt.Status.SUCCEEDED)
    )
    amount = Decimal("1.00")
    status = RefundRequest.Status.PENDING


class RefundFactory(ModelFactory[Refund]):
    """A refund of one order's share; pending unless a trait says otherwise. A succeeded one also marks
    its order refunded (the payment's refunded amount is the caller's, or PaymentFactory's, to set)."""

    class Meta:
        model = Refund
        skip_postgeneration_save = True

    payment = factory.SubFactory(PaymentFactory, succeeded=True)
    attempt = factory.LazyAttribute(lambda refund: refund.payment.attempts.get(status=PaymentAttempt.Status.SUCCEEDED))
    # The first order of the payment that has no live refund yet.
    order = factory.LazyAttribute(
        lambda refund: (
            Order.objects.filter(batch=refund.payment.batch)
            .exclude(refunds__status__in=[Refund.Status.PENDING, Refund.Status.SUCCEEDED])
            .order_by("row_index")
            .first()
        )
    )
    amount = factory.LazyAttribute(lambda refund: refund.order.allocation.amount)
    status = Refund.Status.PENDING
    reason = "refund requested by staff"
    provider_reference = factory.Sequence(lambda n: f"sandbox-refund-{n:06d}")
    requested_at = factory.LazyFunction(timezone.now)
    request = factory.SubFactory(
        RefundRequestFactory,
        payment=factory.SelfAttribute("..payment"),
        attempt=factory.SelfAttribute("..attempt"),
        amount=factory.SelfAttribute("..amount"),
        status=factory.SelfAttribute("..status"),
        reason=factory.SelfAttribute("..reason"),
        provider_reference=factory.SelfAttribute("..provider_reference"),
        requested_at=factory.SelfAttribute("..requested_at"),
    )

    class Params:
        pending = factory.Trait(status=Refund.Status.PENDING)
        succeeded = factory.Trait(status=Refund.Status.SUCCEEDED)
        failed = factory.Trait(status=Refund.Status.FAILED)

    @factory.post_generation
    def order_refunded(refund: Refund, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and refund.status == Refund.Status.SUCCEEDED:
            PaymentAttempt.objects.filter(pk=refund.attempt_id).update(
                refunded_amount=F("refunded_amount") + refund.amount
            )
            if refund.order_id is not None:
                Order.objects.filter(pk=refund.order_id).update(status=Order.Status.REFUNDED)
