"""Drill 1: the worker machine dies (SIGKILL of the main process and its pool children) at about 30 % of
a 1,000-row batch, and a new worker starts. With the default recovery settings the batch reaches its
merged payment within 60 s of the new worker being ready: the new worker places what is still queued, and
the rows the dead worker held (unacknowledged in Redis for the 15-minute visibility timeout) are re-driven
by stuck detection once the batch makes no progress for BATCH_PLACING_TIMEOUT_SECONDS (beat every 5 s,
and a sweep queued by the new worker when it starts). With RabbitMQ as the broker (the `rabbitmq` variant) the
rows the dead worker held are back in the queue as soon as its connection closes.

A real `celery beat` runs beside the workers, as in production; it outlives the worker.
"""

import time
from decimal import Decimal

import pytest

from orders import services
from orders.models import BatchRow, Order, Product
from payments.models import Payment
from tests.drills.conftest import assert_invariants_hold, wait_for_payments
from tests.orders.factories import ProductFactory

ROWS = 1000


@pytest.mark.every_broker
def test_worker_killed_at_30_percent_of_a_1000_row_batch(
    user, private_broker, celery_on, start_worker, start_beat, wait_until, figures
):
    product = ProductFactory(sku="PEN", unit_price=Decimal("1.50"), stock=ROWS)
    broker = private_broker()
    celery_on(broker.url, result_backend=broker.result_backend)
    doomed = start_worker(broker.url, "drill1-doomed", result_backend=broker.result_backend)
    start_beat(broker.url, "drill1-beat", result_backend=broker.result_backend)

    # given: a 1,000-row batch about 30 % placed
    batch = services.batch_submit(owner=user, rows=[{"kind": "goods", "sku": "PEN"}] * ROWS).batch
    placed = lambda: batch.rows.filter(outcome=BatchRow.Outcome.PLACED).count()  # noqa: E731
    wait_until(lambda: placed() >= ROWS * 3 // 10, timeout=120, interval=0.02, what="30 % of the batch placed")

    # when: the worker dies outright, and a new one starts
    doomed.kill()
    killed_at = time.monotonic()
    placed_at_kill = placed()
    start_worker(broker.url, "drill1-fresh", result_backend=broker.result_backend)
    ready_at = time.monotonic()

    # then: the merged payment within 60 s of the new worker being ready, every row placed once
    recovery = wait_for_payments(wait_until, [batch.pk], since=ready_at, timeout=120)
    figures(
        placed_at_kill=f"{placed_at_kill}/{ROWS}",
        kill_to_worker_ready_s=ready_at - killed_at,
        worker_ready_to_payment_s=recovery,
        kill_to_payment_s=time.monotonic() - killed_at,
    )
    assert recovery <= 60
    assert placed() == ROWS
    payment = Payment.objects.get(batch=batch)
    assert payment.amount == Decimal("1.50") * ROWS
    assert Order.objects.filter(batch=batch).count() == ROWS
    assert Product.objects.get(pk=product.pk).stock == 0
    assert_invariants_hold()
