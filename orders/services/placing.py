"""The order interface (seed step A2): place one accepted row of a batch and report the result."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, connection
from django.utils import timezone

from orders import locking, messages, registry, selectors
from orders.models import BatchRow, Order
from orders.registry import PlacementRefused, PlacingStatement
from orders.results import PlacementResult
from orders.services.placing_statement import order_place_in_one_statement

if TYPE_CHECKING:
    from uuid import UUID


def order_place(*, batch_id: UUID | str, row_index: int) -> PlacementResult:
    """Place one row. Idempotent: a row that already has an outcome returns that outcome again.

    A row whose type places it in one statement (`OrderType.placing_statement`, PostgreSQL only) costs two
    round trips: this read and that statement. Any other row, and one the statement left alone, is placed
    the locked way. Either way the row's lock serialises a redelivered task with the original, so a row
    never yields two orders; the (batch, row_index) unique constraint on Order backs that up in the
    database. Only the row is locked, not its batch: the rows of one batch are placed in parallel.
    """
    row = selectors.row_to_place(batch_id=batch_id, row_index=row_index)
    if row.outcome != BatchRow.Outcome.PENDING:
        return _recorded_result(row)
    statement = _statement_for(row)
    if statement is None:
        return _place_locked(batch_id, row_index)
    try:
        result = order_place_in_one_statement(row=row, statement=statement)
    except IntegrityError:
        clash = _reference_clash(batch_id, row_index)
        if clash is None:
            raise
        return _record_failure(batch_id, row_index, *clash)
    return result if result is not None else _place_locked(batch_id, row_index)


def _statement_for(row: BatchRow) -> PlacingStatement | None:
    """The row's placing as one statement, where its type has one and the database can run it."""
    if connection.vendor != "postgresql":
        return None
    return registry.require(row.kind).placing_statement(batch=row.batch, row=row)


def _place_locked(batch_id: UUID | str, row_index: int) -> PlacementResult:
    """Place a row inside a transaction that holds its lock, through its type's `place`."""
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
    return _record_failure(batch_id, row_index, code, message)


def _record_failure(batch_id: UUID | str, row_index: int, code: str, message: str) -> PlacementResult:
    # A refusal or a clash rolled the whole attempt back (stock included); the failure is recorded on its
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
