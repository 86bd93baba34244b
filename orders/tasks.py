"""Celery tasks of the placing pipeline. Each takes ids, re-reads rows and calls a service; each is
safe to run twice, because with late acks a task whose worker died is delivered again."""

import logging
import smtplib
from datetime import timedelta
from typing import Any
from uuid import UUID

from celery import Task, current_app, shared_task
from django.conf import settings

from orders import outbox, selectors, services
from orders.chords import chord_publish
from orders.outbox import queue_task
from orders.services import receipts

logger = logging.getLogger(__name__)

PLACING_QUEUE = "placing"
# With rows still queued, a batch counts as stuck only after this many times the usual silence.
BACKLOG_PATIENCE = 10


def place_row_task_id(batch_id: UUID | str, row_index: int) -> str:
    return f"{batch_id}:{row_index}"


@shared_task
def dispatch_batch(batch_id: str) -> int:
    """Start placing: one place_row task per row still to place, all the header of one chord whose
    callback is finalize_batch (or, for a re-dispatch of some rows, finish_redispatched_batch).
    Publishing a large chord takes a second or more, hence a task of its own; its header is published one
    message at a time (orders/chords.py), so the task's memory does not grow with the batch."""
    dispatch = services.batch_mark_dispatched(batch_id=batch_id)
    if dispatch is None:
        return 0
    if not dispatch.row_indexes:  # every row settled but the callback was lost
        services.batch_recover(batch_id=batch_id)
        return 0
    header = (
        place_row.signature((batch_id, row_index), task_id=place_row_task_id(batch_id, row_index), immutable=True)
        for row_index in dispatch.row_indexes
    )
    callback = finalize_batch.s(batch_id) if dispatch.complete else finish_redispatched_batch.si(batch_id)
    chord_publish(header, size=len(dispatch.row_indexes), callback=callback)
    return len(dispatch.row_indexes)


@shared_task
def place_row(batch_id: str, row_index: int) -> dict[str, Any]:
    """The order interface, called with the batch marker (the batch id) for one row. Its entry of the order
    array says which row and whether it became an order; the order or the reason is in the database."""
    return services.order_place(batch_id=batch_id, row_index=row_index).entry()


@shared_task
def finalize_batch(results: list[dict[str, Any]], batch_id: str) -> str:
    batch = services.batch_finalize(batch_id=batch_id, results=results)
    return batch.status


@shared_task
def finish_redispatched_batch(batch_id: str) -> bool:
    """The callback of a re-dispatch: its results cover only the re-sent rows, so the batch is finished
    from the database, as recovery finishes it."""
    return services.batch_recover(batch_id=batch_id)


@shared_task
def recover_stuck_batches(timeout_seconds: int | None = None) -> dict[str, list[str]]:
    """Re-drive batches stuck in placing (periodic, Celery beat; also `manage.py recover_batches`).

    A batch whose rows all have an outcome is finished at once, through the same finalisation as
    the callback; otherwise the rows still without an outcome are dispatched again.
    """
    timeout = timedelta(
        seconds=timeout_seconds if timeout_seconds is not None else settings.BATCH_PLACING_TIMEOUT_SECONDS
    )
    if timeout_seconds is None and placing_backlog():
        # Rows waiting in the queue are not lost: a batch queued behind others makes no progress either.
        # Only a much longer silence then counts as stuck.
        timeout *= BACKLOG_PATIENCE
    outcome: dict[str, list[str]] = {"finished": [], "redispatched": []}
    for batch in selectors.batches_stuck_in_placing(timeout=timeout):
        outcome[redrive_batch(batch.pk)].append(str(batch.pk))
    if outcome["finished"] or outcome["redispatched"]:
        logger.warning("recovery re-drove stuck batches: %s", outcome)
    return outcome


def placing_backlog() -> int:
    """How many messages wait in the placing queue (0 when the broker cannot say)."""
    try:
        with current_app.connection_for_read() as connection:
            # kombu's StdChannel type leaves queue_declare out; every transport's channel has it.
            channel: Any = connection.default_channel
            return int(channel.queue_declare(queue=PLACING_QUEUE, passive=True).message_count)
    except Exception:  # noqa: BLE001 - an unreachable broker or a missing queue: nothing is known to be waiting
        return 0


def redrive_batch(batch_id: UUID | str) -> str:
    """Finish one placing batch from the database, or dispatch its chord again if rows are unsettled."""
    if services.batch_recover(batch_id=batch_id):
        return "finished"
    queue_task(services.DISPATCH_TASK, str(batch_id))
    return "redispatched"


@shared_task
def publish_outbox() -> int:
    """Periodic: publish the work that commits promised while the broker could not take it."""
    published = outbox.publish_due()
    outbox.purge_published()
    return published


@shared_task(bind=True, max_retries=12)
def send_receipt(self: Task[Any, str], batch_id: str, kind: str) -> str:
    """E-mail one receipt (orders/services/receipts.py); a mail server that is down is tried again, with backoff."""
    try:
        return receipts.receipt_send(batch_id=batch_id, kind=kind, in_order=not self.request.is_eager)
    except receipts.ReceiptNotReady as not_ready:
        raise self.retry(countdown=not_ready.retry_in) from None
    except (OSError, smtplib.SMTPException) as error:
        raise self.retry(exc=error, countdown=min(30 * 2**self.request.retries, 3600)) from None
