"""Ending the asynchronous placing of a batch (seed: the order array is complete) and handing its
orders to the payments app, from the chord callback or from the recovery job."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from orders import billing, locking, messages, selectors
from orders.models import Batch, BatchRow, Order

if TYPE_CHECKING:
    from uuid import UUID

logger = logging.getLogger(__name__)


def batch_finalize(*, batch_id: UUID | str, results: list[dict[str, Any]]) -> Batch:
    """Check the order array against the accepted rows, then settle the batch and hand it to payments.

    Idempotent: a batch that is no longer placing is returned untouched, so a callback that runs twice
    hands off once. The payment is created only when the number of results equals the number of
    accepted rows and the results name exactly the accepted rows (a redelivered header task must
    not stand in for a missing one).
    """
    with locking.transaction():
        batch = locking.lock_one(Batch.objects.filter(pk=batch_id))
        if batch.status != Batch.Status.PLACING:
            return batch

        problem = _results_problem(batch, results)
        if problem:
            logger.warning("batch %s: not finalised: %s", batch.pk, problem)
            batch.inconsistency = problem
            batch.save(update_fields=["inconsistency", "updated_at"])
            return batch

        # Counted, not loaded: the payment side allocates in SQL, so a 5,000-row batch builds no 5,000 objects.
        placed = Order.objects.filter(batch=batch).count()
        if not placed:
            batch.set_status(Batch.Status.FAILED, note="no row could be placed")
            return batch
        batch.set_status(Batch.Status.AWAITING_PAYMENT, note=f"{placed} of {batch.accepted_rows} rows placed")
        billing.billing().bill_batch(batch=batch)
        return batch


def _results_problem(batch: Batch, results: list[dict[str, Any]]) -> str:
    if len(results) != batch.accepted_rows:
        return f"{len(results)} results for {batch.accepted_rows} accepted rows"
    # Compared in order, streaming the accepted rows: sets of 5,000 row numbers cost more memory than the
    # rows themselves (a hash table is sized in powers of two, up to eight times the entries).
    reported = sorted(result["row"] for result in results)
    accepted = (
        batch.rows.exclude(outcome=BatchRow.Outcome.REJECTED)
        .order_by("row_index")
        .values_list("row_index", flat=True)
        .iterator(chunk_size=1000)
    )
    for reported_row, accepted_row in zip_longest(reported, accepted):
        if reported_row == accepted_row:
            continue
        if reported_row is None or (accepted_row is not None and reported_row > accepted_row):
            return f"results do not name exactly the accepted rows (row {accepted_row} has no result)"
        return f"results do not name exactly the accepted rows (row {reported_row} is repeated or not accepted)"
    # The results say every row is settled; the database, the source of truth, must agree.
    unsettled = batch.rows.filter(outcome=BatchRow.Outcome.PENDING).count()
    if unsettled:
        return f"{unsettled} rows have no outcome in the database"
    return ""


@dataclass(frozen=True)
class Dispatch:
    """What one dispatch of a batch places."""

    row_indexes: list[int]  # the accepted rows that have no outcome yet
    complete: bool  # every accepted row is among them: the callback can check the whole order array


def batch_mark_dispatched(*, batch_id: UUID | str) -> Dispatch | None:
    """Record a dispatch and return the rows to place, or None if placing is over.

    A re-dispatch (a killed worker, a lost chord) places only the rows still without an outcome: sending
    every row of a 1,000-row batch again cost ~25 s of tasks that each answered "already placed".
    """
    with locking.transaction():
        batch = locking.lock_first(Batch.objects.filter(pk=batch_id, status=Batch.Status.PLACING))
        if batch is None:
            return None
        batch.dispatch_count += 1
        batch.dispatched_at = timezone.now()
        batch.save(update_fields=["dispatch_count", "dispatched_at", "updated_at"])
        pending = list(
            batch.rows.filter(outcome=BatchRow.Outcome.PENDING)
            .order_by("row_index")
            .values_list("row_index", flat=True)
        )
        return Dispatch(row_indexes=pending, complete=len(pending) == batch.accepted_rows)


def batch_recover(*, batch_id: UUID | str) -> bool:
    """Finish a stuck batch from the database if every accepted row has an outcome.

    Returns False when rows are still unsettled: the caller dispatches them again. After
    BATCH_MAX_DISPATCHES dispatches the rows that still have no outcome are recorded as failures, so
    that a row that cannot be placed (a bug, a poisoned row) ends the batch instead of holding it
    forever.
    """
    batch = Batch.objects.get(pk=batch_id)
    if batch.status != Batch.Status.PLACING:
        return True
    unsettled = batch.rows.filter(outcome=BatchRow.Outcome.PENDING)
    if unsettled.exists():
        if batch.dispatch_count < settings.BATCH_MAX_DISPATCHES:
            return False
        logger.error(
            "batch %s: giving up on %d rows after %d dispatches", batch.pk, unsettled.count(), batch.dispatch_count
        )
        _give_up_on_rows(batch)
    batch_finalize(batch_id=batch.pk, results=selectors.batch_results_from_database(batch))
    return True


def _give_up_on_rows(batch: Batch) -> None:
    with locking.transaction():
        rows = locking.lock_all(batch.rows.filter(outcome=BatchRow.Outcome.PENDING))
        now = timezone.now()
        for row in rows:
            row.failure_code, row.failure_message, row.settled_at = "placing_error", str(messages.PLACING_ERROR), now
        BatchRow.bulk_set_status(
            rows,
            BatchRow.Outcome.FAILED,
            note=f"no outcome after {batch.dispatch_count} dispatches",
            also=("failure_code", "failure_message", "settled_at"),
        )
