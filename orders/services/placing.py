"""The order interface (seed step A2): place one accepted row of a batch and report the result."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError
from django.utils import timezone

from orders import locking, messages, registry
from orders.models import BatchRow, Order
from orders.registry import PlacementRefused
from orders.results import PlacementResult

if TYPE_CHECKING:
    from uuid import UUID


def order_place(*, batch_id: UUID | str, row_index: int) -> PlacementResult:
    """Place one row. Idempotent: a row that already has an outcome returns that outcome again.

    The row lock serialises a redelivered task with the original, so a row never yields two orders;
    the (batch, row_index) unique constraint on Order backs that up in the database. Only the row is
    locked, not its batch: the rows of one batch are placed in parallel.
    """
    try:
        with locking.transaction():
            row = _locked_row(batch_id, row_index)
            if row.outcome != BatchRow.Outcome.PENDING:
                return _recorded_result(row)
            order = registry.require(row.kind).place(batch=row.batch, row=row)
            _settle(row, BatchRow.Outcome.PLACED)
            return PlacementResult.from_row(row, order)
    except PlacementRefused as refusal:
        code, message = refusal.code, refusal.message
    except IntegrityError:
        clash = _reference_clash(batch_id, row_index)
        if clash is None:
            raise
        code, message = clash
    # A refusal or a clash rolled the whole attempt back (stock included); record the failure on its
    # own. Refusals are the rare path, so the common one needs no savepoint.
    with locking.transaction():
        row = _locked_row(batch_id, row_index)
        if row.outcome != BatchRow.Outcome.PENDING:
            return _recorded_result(row)
        row.failure_code, row.failure_message = code, message
        _settle(row, BatchRow.Outcome.FAILED)
        return PlacementResult.from_row(row)


def _locked_row(batch_id: UUID | str, row_index: int) -> BatchRow:
    # The batch is read with the row (the order needs its owner) but not locked.
    return locking.lock_one(BatchRow.objects.select_related("batch").filter(batch_id=batch_id, row_index=row_index))


def _recorded_result(row: BatchRow) -> PlacementResult:
    if row.outcome == BatchRow.Outcome.REJECTED:
        raise ValueError(f"row {row.row_index} of batch {row.batch_id} was rejected at submission and is never placed")
    order = None
    if row.outcome == BatchRow.Outcome.PLACED:
        order = Order.objects.only("pk", "amount").get(batch_id=row.batch_id, row_index=row.row_index)
    return PlacementResult.from_row(row, order)


def _settle(row: BatchRow, outcome: str) -> None:
    row.settled_at = timezone.now()
    row.set_status(outcome, also=("failure_code", "failure_message", "settled_at"))


def _reference_clash(batch_id: UUID | str, row_index: int) -> tuple[str, str] | None:
    """The clash a row can cause: its reference taken by another order since it was validated."""
    row = BatchRow.objects.select_related("batch").get(batch_id=batch_id, row_index=row_index)
    if row.reference is None or not Order.objects.filter(owner_id=row.batch.owner_id, reference=row.reference).exists():
        return None
    return "reference_used", str(messages.REFERENCE_USED).format(reference=row.reference)
