"""The factories build what the services would: tests that build data by hand trust these invariants."""

from decimal import Decimal

import pytest

from orders.models import Batch, BatchRow, Order
from payments.models import Payment
from tests.orders.factories import BatchFactory, BatchRowFactory, OrderFactory, ProductFactory


def assert_consistent(batch: Batch) -> None:
    """The invariants of SPEC section 7, as a test reads them off the database."""
    rows = batch.rows.all()
    assert rows.count() == batch.row_count
    assert rows.exclude(outcome=BatchRow.Outcome.REJECTED).count() == batch.accepted_rows
    placed = set(rows.filter(outcome=BatchRow.Outcome.PLACED).values_list("row_index", flat=True))
    assert set(Order.objects.filter(batch=batch).values_list("row_index", flat=True)) == placed
    assert Order.objects.filter(batch=batch).exclude(owner=batch.owner).count() == 0
    payment = Payment.objects.filter(batch=batch).first()
    if batch.status in (Batch.Status.PLACING, Batch.Status.FAILED):
        assert payment is None
    else:
        assert payment is not None
        orders = Order.objects.filter(batch=batch)
        assert payment.amount == sum(order.amount for order in orders)
        assert payment.amount == sum(allocation.amount for allocation in payment.allocations.all())
        assert payment.allocations.count() == orders.count() > 0


@pytest.mark.parametrize(
    ("state", "row_outcome", "order_status", "payment_status"),
    [
        ("placing", "pending", None, None),
        ("awaiting_payment", "placed", "awaiting_payment", "pending"),
        ("failed", "failed", None, None),
        ("paid", "placed", "paid", "succeeded"),
        ("cancelled", "placed", "cancelled", "cancelled"),
        ("expired", "placed", "expired", "expired"),
    ],
)
def test_a_batch_in_each_state_is_consistent(db, state, row_outcome, order_status, payment_status):
    batch = BatchFactory(**{state: True}, row_count=3)

    assert batch.status == state
    assert set(batch.rows.values_list("outcome", flat=True)) == {row_outcome}
    assert set(Order.objects.filter(batch=batch).values_list("status", flat=True)) == (
        {order_status} if order_status else set()
    )
    assert Payment.objects.filter(batch=batch, status=payment_status).exists() is (payment_status is not None)
    assert_consistent(batch)


def test_a_paid_batch_is_paid_for_exactly_its_orders(db):
    lamp = ProductFactory(unit_price=Decimal("12.50"))

    batch = BatchFactory(paid=True, row_count=4, accepted_rows=3, rows__product=lamp, rows__quantity=2)

    assert batch.payment.status == Payment.Status.SUCCEEDED and batch.payment.paid_at is not None
    assert batch.payment.amount == Decimal("75.00")  # 3 accepted rows × 2 × 12.50
    assert batch.rows.get(row_index=3).outcome == BatchRow.Outcome.REJECTED
    assert_consistent(batch)


def test_rows_and_orders_on_their_own_bring_a_consistent_batch(db):
    placed = BatchRowFactory(placed=True)
    failed = BatchRowFactory(failed=True)
    order = OrderFactory(quantity=3)

    assert placed.batch.orders.get().row_index == placed.row_index
    assert failed.failure_code == "out_of_stock" and not failed.batch.orders.exists()
    assert order.batch.rows.get().outcome == BatchRow.Outcome.PLACED
    assert order.amount == Decimal("30.00")
    for batch in (placed.batch, failed.batch):
        assert batch.rows.count() == batch.row_count == 1
