"""Invariants under redelivery and loss (SPEC section 7): every accepted row ends as exactly one order or
one failure, a batch gets at most one payment, and a batch stuck in placing is re-driven to the same end
state as the normal path. Real worker, Redis and PostgreSQL throughout; the tests with the worker run again with
RabbitMQ as the broker."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from config.celery import app as celery_app
from orders import services
from orders.models import Batch, BatchRow, BatchRowStatusChange, BatchStatusChange, Order
from orders.tasks import finalize_batch, place_row, place_row_task_id, placing_backlog, recover_stuck_batches
from payments.models import Payment
from tests.orders.factories import ProductFactory
from tests.orders.pipeline import dispatch_suppressed

ROWS: list[dict[str, Any]] = [{"kind": "goods", "sku": "BOOK", "quantity": q} for q in (1, 2, 3, 1, 2, 3, 1, 2, 3, 4)]
EXPECTED_TOTAL = Decimal("7.50") * sum(row["quantity"] for row in ROWS)

pytestmark = pytest.mark.every_broker


@pytest.fixture
def book(db):
    return ProductFactory(sku="BOOK", unit_price=Decimal("7.50"))


@pytest.fixture
def record_without_dispatch(user):
    """Record a batch as if its dispatch task had been lost: rows in the database, nothing queued."""

    def record(rows=ROWS):
        with dispatch_suppressed():
            return services.batch_submit(owner=user, rows=rows).batch

    return record


def settled(batch, wait_until, count):
    wait_until(
        lambda: batch.rows.exclude(outcome=BatchRow.Outcome.PENDING).count() == count,
        timeout=30,
        what=f"{count} rows of batch {batch.pk} to settle",
    )


def test_place_row_delivered_five_times_yields_one_order(
    worker, book, record_without_dispatch, wait_until, wait_for_idle_worker
):
    batch = record_without_dispatch()

    for _ in range(5):  # a redelivered message carries the same task id
        place_row.apply_async((str(batch.pk), 0), task_id=place_row_task_id(batch.pk, 0))

    settled(batch, wait_until, 1)
    wait_for_idle_worker()
    assert Order.objects.filter(batch=batch, row_index=0).count() == 1
    assert Order.objects.filter(batch=batch).count() == 1


def test_callback_run_twice_hands_off_once(worker, book, record_without_dispatch, wait_for_idle_worker):
    batch = record_without_dispatch()
    results = [services.order_place(batch_id=batch.pk, row_index=i).as_dict() for i in range(len(ROWS))]

    finalize_batch.delay(results, str(batch.pk))
    finalize_batch.delay(results, str(batch.pk))

    wait_for_idle_worker()
    assert Payment.objects.filter(batch=batch).count() == 1
    assert Payment.objects.get(batch=batch).amount == EXPECTED_TOTAL
    assert BatchStatusChange.objects.filter(batch=batch, new_status=Batch.Status.AWAITING_PAYMENT).count() == 1


def test_results_that_repeat_one_row_and_miss_another_create_no_payment(book, user, record_without_dispatch, db):
    batch = record_without_dispatch()
    results = [services.order_place(batch_id=batch.pk, row_index=i).as_dict() for i in range(len(ROWS))]
    results[9] = results[8]  # a redelivered header task standing in for a missing one

    services.batch_finalize(batch_id=batch.pk, results=results)

    batch.refresh_from_db()
    assert batch.status == Batch.Status.PLACING
    assert batch.inconsistency == "results do not name exactly the accepted rows (row 8 is repeated or not accepted)"
    assert not Payment.objects.exists()


def test_results_that_miss_a_row_for_one_outside_the_batch_create_no_payment(book, record_without_dispatch, db):
    batch = record_without_dispatch()
    results = [services.order_place(batch_id=batch.pk, row_index=i).as_dict() for i in range(len(ROWS))]
    results[4] = {**results[4], "row": len(ROWS)}  # row 4's entry names a row the batch does not have

    services.batch_finalize(batch_id=batch.pk, results=results)

    batch.refresh_from_db()
    assert batch.inconsistency == "results do not name exactly the accepted rows (row 4 has no result)"
    assert not Payment.objects.exists()


def test_too_few_results_create_no_payment(book, user, record_without_dispatch, db):
    batch = record_without_dispatch()
    results = [services.order_place(batch_id=batch.pk, row_index=i).as_dict() for i in range(len(ROWS))]

    services.batch_finalize(batch_id=batch.pk, results=results[:-1])

    batch.refresh_from_db()
    assert batch.status == Batch.Status.PLACING
    assert batch.inconsistency == "9 results for 10 accepted rows"
    assert not Payment.objects.exists()


def test_a_placed_row_the_database_lost_is_placed_again_and_paid_for_once(
    worker, book, record_without_dispatch, wait_for_batch
):
    """A row is placed with an asynchronous commit (PLACING_ASYNCHRONOUS_COMMIT): a database crash may lose it
    after its task reported it placed. The order array then says more than the database, so the callback
    creates no payment, and recovery places the row again."""
    batch = record_without_dispatch()
    results = [services.order_place(batch_id=batch.pk, row_index=i).as_dict() for i in range(len(ROWS))]
    # the crash: the statement's writes for row 3 never reached the disk, all of them together
    lost = batch.rows.get(row_index=3)
    Order.objects.filter(batch=batch, row_index=3).delete()
    BatchRowStatusChange.objects.filter(row=lost).delete()
    BatchRow.objects.filter(pk=lost.pk).update(outcome=BatchRow.Outcome.PENDING, settled_at=None)

    finalize_batch.apply(args=(results, str(batch.pk)))

    batch.refresh_from_db()
    assert (batch.status, batch.inconsistency) == (Batch.Status.PLACING, "1 rows have no outcome in the database")
    assert not Payment.objects.filter(batch=batch).exists()

    recover_stuck_batches.delay(timeout_seconds=0)  # as beat, or a worker that starts, would

    batch = wait_for_batch(batch.pk)
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    assert sorted(Order.objects.filter(batch=batch).values_list("row_index", flat=True)) == list(range(len(ROWS)))
    assert Payment.objects.get(batch=batch).amount == EXPECTED_TOTAL


def test_recovery_finishes_a_batch_whose_dispatch_died_half_way(
    worker, book, user, record_without_dispatch, wait_for_batch, wait_until
):
    # given: a reference batch through the normal path, and one whose dispatch published half its rows
    normal = wait_for_batch(services.batch_submit(owner=user, rows=ROWS).batch.pk)
    broken = record_without_dispatch()
    for row_index in range(5):
        place_row.apply_async((str(broken.pk), row_index), task_id=place_row_task_id(broken.pk, row_index))
    settled(broken, wait_until, 5)

    # when: the periodic job runs (as beat would, through the worker)
    recover_stuck_batches.delay(timeout_seconds=0)

    # then: the same end state as the normal path
    broken = wait_for_batch(broken.pk)
    assert_same_outcome(broken, normal)
    assert broken.dispatch_count == 1


def test_recovery_finishes_a_batch_whose_chord_was_lost(
    worker, book, record_without_dispatch, wait_for_batch, wait_until
):
    # given: every row placed, but no callback will ever come (results purged, chord gone)
    batch = record_without_dispatch()
    for row_index in range(len(ROWS)):
        place_row.apply_async((str(batch.pk), row_index), task_id=place_row_task_id(batch.pk, row_index))
    settled(batch, wait_until, len(ROWS))

    # when
    call_command("recover_batches", "--older-than", "0")

    # then: finished from the database at once, without placing anything again
    batch.refresh_from_db()
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    assert batch.dispatch_count == 0
    assert Payment.objects.get(batch=batch).amount == EXPECTED_TOTAL
    assert Order.objects.filter(batch=batch).count() == len(ROWS)


def test_recovery_leaves_a_batch_that_is_still_making_progress_alone(book, record_without_dispatch, db):
    batch = record_without_dispatch()

    outcome = recover_stuck_batches(timeout_seconds=600)

    assert outcome == {"finished": [], "redispatched": []}
    batch.refresh_from_db()
    assert batch.dispatch_count == 0


def test_recovery_waits_longer_for_a_silent_batch_while_rows_wait_in_the_placing_queue(
    private_broker, celery_on, book, record_without_dispatch, settings, wait_until, db
):
    # given: a batch silent for twice the placing timeout, and another batch's rows waiting in the placing
    # queue of a broker that no worker consumes from
    broker = private_broker()
    celery_on(broker.url, result_backend=broker.result_backend)
    silent = record_without_dispatch()
    silent_for = timedelta(seconds=2 * settings.BATCH_PLACING_TIMEOUT_SECONDS)
    Batch.objects.filter(pk=silent.pk).update(created_at=timezone.now() - silent_for)
    queued = record_without_dispatch()
    for row_index in range(3):
        place_row.apply_async((str(queued.pk), row_index), task_id=place_row_task_id(queued.pk, row_index))
    wait_until(lambda: placing_backlog() == 3, timeout=10, what="3 messages in the placing queue")

    # when: the periodic job runs with that backlog, and again once the queue is empty
    with_backlog = recover_stuck_batches()
    celery_app.control.purge()
    wait_until(lambda: placing_backlog() == 0, timeout=10, what="an empty placing queue")
    without_backlog = recover_stuck_batches()

    # then: rows still queued are not lost, so the silent batch is given ten times the usual patience first
    assert with_backlog == {"finished": [], "redispatched": []}
    assert without_backlog == {"finished": [], "redispatched": [str(silent.pk)]}


def assert_same_outcome(batch, reference):
    assert batch.status == reference.status == Batch.Status.AWAITING_PAYMENT
    assert Order.objects.filter(batch=batch).count() == Order.objects.filter(batch=reference).count() == len(ROWS)
    assert Payment.objects.get(batch=batch).amount == Payment.objects.get(batch=reference).amount == EXPECTED_TOTAL
    assert Payment.objects.filter(batch=batch).count() == 1


def test_rows_that_never_settle_become_failures_after_the_last_dispatch(book, record_without_dispatch, settings, db):
    # given: a batch dispatched as often as allowed, two rows placed, the rest never settling
    batch = record_without_dispatch()
    for row_index in (0, 1):
        services.order_place(batch_id=batch.pk, row_index=row_index)
    Batch.objects.filter(pk=batch.pk).update(dispatch_count=settings.BATCH_MAX_DISPATCHES)

    outcome = recover_stuck_batches(timeout_seconds=0)

    assert outcome == {"finished": [str(batch.pk)], "redispatched": []}
    batch.refresh_from_db()
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    assert batch.rows.filter(outcome="failed", failure_code="placing_error").count() == len(ROWS) - 2
    assert Payment.objects.get(batch=batch).amount == Decimal("7.50") * 3
