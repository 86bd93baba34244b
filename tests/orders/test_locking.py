"""The lock order is code: locking out of order, or outside a locking transaction, fails at once."""

import pytest

from orders import locking
from orders.models import Batch, BatchRow, Order
from payments.models import Payment, Refund
from recharge.models import Fulfilment


def test_the_documented_order_is_the_order_of_the_ranks():
    ranks = [model.LOCK_RANK for model in (Batch, BatchRow, Payment, Order, Refund)]

    assert ranks == sorted(ranks)
    assert Fulfilment.LOCK_RANK == Refund.LOCK_RANK  # both hang off an order


@pytest.mark.django_db
def test_locking_in_the_documented_order_is_allowed(placed_batch):
    batch = placed_batch()

    with locking.transaction():
        locking.lock_one(Batch.objects.filter(pk=batch.pk))
        locking.lock_one(Payment.objects.filter(batch=batch))
        orders = locking.lock_all(Order.objects.filter(batch=batch))
        with locking.transaction():  # a nested block continues the same order
            locking.lock_all(Refund.objects.filter(order__in=orders))

    assert [order.pk for order in orders] == sorted(order.pk for order in orders)


@pytest.mark.django_db
def test_locking_a_batch_after_its_orders_is_refused(placed_batch):
    batch = placed_batch()

    with pytest.raises(locking.LockOrderViolation, match="Batch"), locking.transaction():
        locking.lock_all(Order.objects.filter(batch=batch))
        locking.lock_one(Batch.objects.filter(pk=batch.pk))


@pytest.mark.django_db
def test_a_lock_outside_a_locking_transaction_is_refused(placed_batch):
    batch = placed_batch()

    with pytest.raises(locking.LockOrderViolation, match="outside"):
        locking.lock_one(Batch.objects.filter(pk=batch.pk))


@pytest.mark.django_db
def test_a_new_transaction_starts_a_new_order(placed_batch):
    batch = placed_batch()

    with locking.transaction():
        locking.lock_all(Order.objects.filter(batch=batch))
    with locking.transaction():
        assert locking.lock_one(Batch.objects.filter(pk=batch.pk)) == batch


@pytest.mark.django_db
def test_a_lock_names_only_its_own_table(placed_batch, django_assert_num_queries):
    batch = placed_batch()

    with locking.transaction(), django_assert_num_queries(1) as captured:
        locking.lock_one(BatchRow.objects.select_related("batch").filter(batch=batch, row_index=0))

    assert 'FOR UPDATE OF "orders_batchrow"' in captured.captured_queries[0]["sql"]
