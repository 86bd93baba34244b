"""The foundation's promise: a real worker process executes a real task through the broker (Redis, and RabbitMQ)
and writes to PostgreSQL."""

import pytest

from orders import services
from orders.models import Batch, Order
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory


@pytest.mark.every_broker
def test_worker_places_a_submitted_row_through_the_broker_into_postgres(worker, wait_until):
    # given
    owner = UserFactory()
    ProductFactory(sku="MUG", unit_price="12.50")

    # when: the submission commits, the dispatch task goes to the broker and the worker places the row
    submission = services.batch_submit(owner=owner, rows=[{"kind": "goods", "sku": "MUG", "quantity": 2}])

    # then: the order exists in PostgreSQL, written by the worker process
    order = wait_until(lambda: Order.objects.filter(batch=submission.batch).first(), timeout=30, what="the order")
    assert order.amount == order.unit_price * 2 == 25
    wait_until(
        lambda: Batch.objects.get(pk=submission.batch.pk).status == Batch.Status.AWAITING_PAYMENT,
        timeout=30,
        what="the batch to await payment",
    )
