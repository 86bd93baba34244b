"""A worker machine dies in the middle of a batch (SIGKILL: no acknowledgement, no clean-up, open
transactions cut). The batch must still end with exactly one order or one failure per row and one
payment, on Redis without waiting for its visibility timeout, on RabbitMQ too.

Nothing here depends on timing. The test has a broker and workers of its own, so the session's shared
worker never sees the batch. The batch's first rows buy product A and the rest product B, and the
test holds B's row lock from a connection of its own: the doomed worker places A's rows, then both of
its pool processes stop inside a row's transaction, waiting for a lock. That is when it is killed.
"""

from decimal import Decimal

import psycopg
import pytest
from django.db import connection

from orders import services
from orders.models import Batch, BatchRow, Order, Product
from orders.tasks import recover_stuck_batches
from payments.models import Payment
from tests.orders.factories import ProductFactory

ROWS_OF_A = 20
ROWS_OF_B = 80
EXPECTED_TOTAL = Decimal("2.00") * ROWS_OF_A + Decimal("30.00") * ROWS_OF_B


def sessions_waiting_for_a_lock() -> int:
    """Sessions of the test database blocked by another's lock: behind the test's own, or queued behind
    one that is (the second waiter for a row waits for the first). Asked on Django's connection, in a
    transaction of its own: within one transaction pg_stat_activity keeps showing its first answer."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
        )
        return cursor.fetchone()[0]


@pytest.mark.every_broker
def test_a_worker_killed_mid_batch_loses_no_row_and_places_none_twice(
    user, private_broker, celery_on, start_worker, test_database_url, wait_until, wait_for_idle_worker, wait_for_batch
):
    a = ProductFactory(sku="SOCK", unit_price=Decimal("2.00"), stock=ROWS_OF_A)
    b = ProductFactory(sku="SHOE", unit_price=Decimal("30.00"), stock=ROWS_OF_B)
    broker = private_broker()
    celery_on(broker.url, result_backend=broker.result_backend)
    doomed = start_worker(broker.url, "doomed-worker", result_backend=broker.result_backend)
    rows = [{"kind": "goods", "sku": "SOCK"}] * ROWS_OF_A + [{"kind": "goods", "sku": "SHOE"}] * ROWS_OF_B

    # given: a batch being placed by the doomed worker, both of its pool processes inside a row's
    # transaction, waiting for the lock on product B
    with psycopg.connect(test_database_url) as lock_holder:
        lock_holder.execute("SELECT id FROM orders_product WHERE id = %s FOR UPDATE", [b.pk])
        batch = services.batch_submit(owner=user, rows=rows).batch
        wait_until(
            lambda: sessions_waiting_for_a_lock() == doomed.concurrency,
            timeout=60,
            what="both of the doomed worker's processes to wait for product B",
        )
        assert 0 < batch.rows.filter(outcome=BatchRow.Outcome.PLACED).count() <= ROWS_OF_A  # mid-batch

        # when: it is killed outright; the lock goes; another worker takes over what is queued
        doomed.kill()
        lock_holder.rollback()
    start_worker(broker.url, "fresh-worker", result_backend=broker.result_backend)
    wait_for_idle_worker(timeout=60)
    if broker.kind == "redis":
        # The tasks the killed worker held never report to the chord (their messages stay unacknowledged in Redis
        # until its visibility timeout, 15 min): only recovery finishes the batch. Their rows may be placed
        # already: a row is placed by one statement, which the database runs to its end, and commits, even when
        # the worker that sent it is gone.
        batch.refresh_from_db()
        assert batch.status == Batch.Status.PLACING
    else:
        # RabbitMQ put them back in the queue when the killed worker's connection closed: the fresh worker placed them.
        assert not batch.rows.filter(outcome=BatchRow.Outcome.PENDING).exists()
    recover_stuck_batches(timeout_seconds=0)  # what beat does every 5 s

    # then: every row placed once, one payment for exactly the orders, stock taken once per row
    batch = wait_for_batch(batch.pk)
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    assert batch.rows.filter(outcome=BatchRow.Outcome.PLACED).count() == ROWS_OF_A + ROWS_OF_B
    orders = Order.objects.filter(batch=batch)
    assert sorted(orders.values_list("row_index", flat=True)) == list(range(ROWS_OF_A + ROWS_OF_B))
    payment = Payment.objects.get(batch=batch)
    assert payment.amount == sum(order.amount for order in orders) == EXPECTED_TOTAL
    assert payment.allocations.count() == ROWS_OF_A + ROWS_OF_B
    assert Product.objects.get(pk=a.pk).stock == 0
    assert Product.objects.get(pk=b.pk).stock == 0
