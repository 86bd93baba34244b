"""A worker machine dies in the middle of a batch (SIGKILL: no acknowledgement, no clean-up, open
transactions cut). The batch must still end with exactly one order or one failure per row and one
payment, without waiting for Redis's one-hour visibility timeout."""

from decimal import Decimal

from django.conf import settings

from config.celery import app as celery_app
from orders import services
from orders.models import Batch, BatchRow, Order, Product
from orders.tasks import recover_stuck_batches
from payments.models import Payment
from tests.conftest import WorkerProcess
from tests.orders.factories import ProductFactory

ROW_COUNT = 300


def set_consuming(worker: WorkerProcess, consuming: bool):
    for queue in settings.CELERY_TASK_QUEUES:
        if consuming:
            celery_app.control.add_consumer(queue.name, destination=[worker.hostname], reply=True)
        else:
            celery_app.control.cancel_consumer(queue.name, destination=[worker.hostname], reply=True)


def test_a_worker_killed_mid_batch_loses_no_row_and_places_none_twice(
    worker, user, redis_url, wait_until, wait_for_batch
):
    ProductFactory(sku="SOCK", unit_price=Decimal("2.00"), stock=ROW_COUNT)
    set_consuming(worker, False)  # the shared worker steps aside: the doomed one gets the batch
    doomed = WorkerProcess(redis_url, "doomed-worker").wait_ready()
    try:
        # given: a batch being placed by the doomed worker
        batch = services.batch_submit(owner=user, rows=[{"kind": "goods", "sku": "SOCK"}] * ROW_COUNT).batch
        placed = lambda: batch.rows.filter(outcome=BatchRow.Outcome.PLACED).count()  # noqa: E731
        wait_until(lambda: placed() >= 30, timeout=30, what="the doomed worker to place some rows")

        # when: it is killed outright half way, and another worker takes over
        doomed.kill()
        assert placed() < ROW_COUNT, "the batch finished before the kill; make it larger"
    finally:
        doomed.stop()
        set_consuming(worker, True)
    wait_until(
        lambda: batch.rows.filter(outcome=BatchRow.Outcome.PENDING).count() <= 4,
        timeout=60,
        what="the queued rows to be placed by the surviving worker",
    )
    recover_stuck_batches(timeout_seconds=0)  # what beat does every minute

    # then
    batch = wait_for_batch(batch.pk)
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    assert batch.rows.filter(outcome=BatchRow.Outcome.PLACED).count() == ROW_COUNT
    assert Order.objects.filter(batch=batch).count() == ROW_COUNT
    assert Payment.objects.get(batch=batch).amount == Decimal("2.00") * ROW_COUNT
    assert Product.objects.get(sku="SOCK").stock == 0
