"""Factories for the orders app: products, batches in each state, their rows and their orders.

What they build is consistent: a batch's rows match its counts, every placed row has exactly one order
and only placed rows have one, orders are in the status their batch's status implies, and a batch that
was handed to payments (awaiting payment, paid, cancelled, expired) has its one payment, whose amount is
the sum of its orders (built by tests/payments/factories.py). No audit rows are written and no stock is
reserved: for the real path through the services, use `tests.orders.pipeline.batch_place`.

    BatchFactory()                        placing, 2 pending rows
    BatchFactory(paid=True, row_count=3)  3 paid orders and a succeeded payment
    BatchFactory(failed=True)             every row failed, no order, no payment
    BatchFactory(placing=True, rows__outcome="placed")   placed but not yet finalised
    BatchFactory(row_count=3, accepted_rows=2)           the last row rejected at submission
    BatchFactory(awaiting_payment=True, rows__product=lamp, rows__quantity=2)
"""

from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from orders import messages
from orders.models import Batch, BatchRow, Order, Product
from orders.money import to_money
from tests.factories import ModelFactory, UserFactory

# What a batch's status says about its rows' outcome and its orders' status.
ROW_OUTCOME_OF_BATCH: dict[str, str] = {
    Batch.Status.PLACING: BatchRow.Outcome.PENDING,
    Batch.Status.AWAITING_PAYMENT: BatchRow.Outcome.PLACED,
    Batch.Status.FAILED: BatchRow.Outcome.FAILED,
    Batch.Status.PAID: BatchRow.Outcome.PLACED,
    Batch.Status.CANCELLED: BatchRow.Outcome.PLACED,
    Batch.Status.EXPIRED: BatchRow.Outcome.PLACED,
}
ORDER_STATUS_OF_BATCH: dict[str, str] = {
    Batch.Status.PLACING: Order.Status.AWAITING_PAYMENT,
    Batch.Status.AWAITING_PAYMENT: Order.Status.AWAITING_PAYMENT,
    Batch.Status.PAID: Order.Status.PAID,
    Batch.Status.CANCELLED: Order.Status.CANCELLED,
    Batch.Status.EXPIRED: Order.Status.EXPIRED,
}
# The batch statuses that come with a payment.
HANDED_TO_PAYMENTS = {
    Batch.Status.AWAITING_PAYMENT,
    Batch.Status.PAID,
    Batch.Status.CANCELLED,
    Batch.Status.EXPIRED,
}


class ProductFactory(ModelFactory[Product]):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    name = factory.LazyAttribute(lambda product: f"Product {product.sku}")
    kind = "goods"
    unit_price = Decimal("10.00")
    stock = None
    active = True

    class Params:
        inactive = factory.Trait(active=False)


def _after_placing(batch):
    return None if batch.status == Batch.Status.PLACING else timezone.now()


class BatchFactory(ModelFactory[Batch]):
    """A batch of goods rows in a given state (a trait per status; placing is the default)."""

    class Meta:
        model = Batch
        skip_postgeneration_save = True

    owner = factory.SubFactory(UserFactory)
    status = Batch.Status.PLACING
    source = Batch.Source.API
    row_count = 2
    accepted_rows = factory.SelfAttribute("row_count")
    dispatch_count = factory.LazyAttribute(lambda batch: 0 if batch.status == Batch.Status.PLACING else 1)
    dispatched_at = factory.LazyAttribute(_after_placing)
    placed_at = factory.LazyAttribute(_after_placing)

    class Params:
        placing = factory.Trait(status=Batch.Status.PLACING)
        awaiting_payment = factory.Trait(status=Batch.Status.AWAITING_PAYMENT)
        failed = factory.Trait(status=Batch.Status.FAILED)
        paid = factory.Trait(status=Batch.Status.PAID)
        cancelled = factory.Trait(status=Batch.Status.CANCELLED)
        expired = factory.Trait(status=Batch.Status.EXPIRED)

    @factory.post_generation
    def rows(
        batch: Batch,
        create: bool,
        extracted: Any,
        product: Product | None = None,
        quantity: int = 1,
        outcome: str | None = None,
        **kwargs: Any,
    ) -> None:
        """`row_count` rows: the accepted ones with the outcome the status implies (or `rows__outcome`),
        each buying `rows__quantity` of `rows__product`; the rest rejected. `rows=False`: no rows."""
        if not create or extracted is False:
            return
        product = product or ProductFactory()
        outcome = outcome or ROW_OUTCOME_OF_BATCH[batch.status]
        for row_index in range(batch.row_count):
            if row_index < batch.accepted_rows:
                BatchRowFactory(batch=batch, row_index=row_index, product=product, quantity=quantity, outcome=outcome)
            else:
                BatchRowFactory(batch=batch, row_index=row_index, rejected=True)

    @factory.post_generation
    def payment(batch: Batch, create: bool, extracted: Any, **kwargs: Any) -> None:
        """The batch's one payment, when its status says it was handed to payments. `payment=False`: none."""
        if not create or extracted is False or batch.status not in HANDED_TO_PAYMENTS:
            return
        # Imported here: the payments factories build on these ones.
        from tests.payments.factories import PaymentFactory, payment_status_of_batch

        PaymentFactory(batch=batch, status=payment_status_of_batch(batch.status), **kwargs)


class BatchRowFactory(ModelFactory[BatchRow]):
    """One row of a batch: pending (default), placed (with its order), failed or rejected."""

    class Meta:
        model = BatchRow
        skip_postgeneration_save = True

    # On its own, a row gets a batch of one row.
    batch = factory.SubFactory(BatchFactory, row_count=1, rows=False, payment=False)
    row_index = factory.LazyAttribute(lambda row: row.batch.rows.count())
    kind = "goods"
    data = factory.LazyAttribute(lambda row: {"sku": row.product.sku, "quantity": row.quantity})
    outcome = BatchRow.Outcome.PENDING
    settled_at = factory.LazyAttribute(
        lambda row: timezone.now() if row.outcome in (BatchRow.Outcome.PLACED, BatchRow.Outcome.FAILED) else None
    )
    failure_code = factory.LazyAttribute(lambda row: "out_of_stock" if row.outcome == BatchRow.Outcome.FAILED else "")
    failure_message = factory.LazyAttribute(
        lambda row: (
            str(messages.OUT_OF_STOCK).format(sku=row.product.sku) if row.outcome == BatchRow.Outcome.FAILED else ""
        )
    )

    class Params:
        product = factory.SubFactory(ProductFactory)
        quantity = 1
        pending = factory.Trait(outcome=BatchRow.Outcome.PENDING)
        placed = factory.Trait(outcome=BatchRow.Outcome.PLACED)
        failed = factory.Trait(outcome=BatchRow.Outcome.FAILED)
        # As submitted: an unknown SKU, kept with its error and never placed.
        rejected = factory.Trait(
            outcome=BatchRow.Outcome.REJECTED,
            data={"kind": "goods", "sku": "NO-SUCH-SKU"},
            errors={"sku": [str(messages.UNKNOWN_SKU).format(sku="NO-SUCH-SKU")]},
        )

    @factory.post_generation
    def order(row: BatchRow, create: bool, extracted: Any, **kwargs: Any) -> None:
        """A placed row's one order (`order=False`: none, e.g. to build a broken row on purpose)."""
        if not create or extracted is False or row.outcome != BatchRow.Outcome.PLACED:
            return
        if not Order.objects.filter(batch=row.batch, row_index=row.row_index).exists():
            product = Product.objects.get(sku=row.data["sku"])
            OrderFactory(batch=row.batch, row_index=row.row_index, product=product, quantity=row.data["quantity"])


class OrderFactory(ModelFactory[Order]):
    """An order with its placed row; its status follows its batch's unless given."""

    class Meta:
        model = Order
        skip_postgeneration_save = True

    # On its own, an order gets a batch of one row, placed and awaiting payment (without a payment).
    batch = factory.SubFactory(BatchFactory, row_count=1, rows=False, payment=False, awaiting_payment=True)
    owner = factory.SelfAttribute("batch.owner")
    row_index = factory.LazyAttribute(lambda order: order.batch.orders.count())
    product = factory.SubFactory(ProductFactory)
    kind = factory.SelfAttribute("product.kind")
    quantity = 1
    unit_price = factory.SelfAttribute("product.unit_price")
    amount = factory.LazyAttribute(lambda order: to_money(order.unit_price * order.quantity))
    status = factory.LazyAttribute(lambda order: ORDER_STATUS_OF_BATCH[order.batch.status])
    details = factory.LazyAttribute(lambda order: {"sku": order.product.sku, "name": order.product.name})

    @factory.post_generation
    def row(order: Order, create: bool, extracted: Any, **kwargs: Any) -> None:
        """The placed row the order came from, unless the batch has it already."""
        if not create or extracted is False:
            return
        if not BatchRow.objects.filter(batch=order.batch, row_index=order.row_index).exists():
            BatchRowFactory(
                batch=order.batch,
                row_index=order.row_index,
                product=order.product,
                quantity=order.quantity,
                placed=True,
                order=False,
            )
