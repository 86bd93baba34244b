"""The payment factories build what the services would: one payment per batch, paying exactly its orders."""

import pytest

from orders.models import Batch, Order
from payments.models import Payment, Refund
from tests.orders.test_factories import assert_consistent
from tests.payments.factories import PaymentFactory, RefundFactory


@pytest.mark.parametrize(
    ("state", "batch_status", "order_statuses", "refunded_orders"),
    [
        ("pending", "awaiting_payment", {"awaiting_payment"}, 0),
        ("succeeded", "paid", {"paid"}, 0),
        ("partially_refunded", "paid", {"paid", "refunded"}, 1),
        ("refunded", "paid", {"refunded"}, 3),
        ("expired", "expired", {"expired"}, 0),
        ("cancelled", "cancelled", {"cancelled"}, 0),
    ],
)
def test_a_payment_in_each_state_is_consistent(db, state, batch_status, order_statuses, refunded_orders):
    payment = PaymentFactory(**{state: True}, batch__row_count=3)

    batch = Batch.objects.get(pk=payment.batch_id)
    assert (payment.status, batch.status) == (state, batch_status)
    assert set(Order.objects.filter(batch=batch).values_list("status", flat=True)) == order_statuses
    refunds = Refund.objects.filter(payment=payment, status=Refund.Status.SUCCEEDED)
    assert refunds.count() == refunded_orders
    assert payment.refunded_amount == sum(refund.amount for refund in refunds)
    assert Payment.objects.filter(batch=batch).count() == 1
    assert_consistent(batch)


def test_a_refund_takes_an_order_not_refunded_yet(db):
    payment = PaymentFactory(partially_refunded=True, batch__row_count=2)

    refund = RefundFactory(payment=payment)

    first = Order.objects.get(batch=payment.batch, row_index=0)
    assert first.status == Order.Status.REFUNDED
    assert (refund.order.row_index, refund.status) == (1, Refund.Status.PENDING)
    assert refund.amount == refund.order.amount
