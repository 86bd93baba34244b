"""Reads of the orders app that are more than a one-liner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Count, Field, Max, Q, QuerySet
from django.utils import timezone

from orders.models import Batch, BatchRow
from orders.results import PlacementResult
from orders.sql import quoted_column, quoted_table

if TYPE_CHECKING:
    from uuid import UUID


def batch_progress(batch: Batch) -> dict[str, int]:
    """Placed / failed / pending / rejected row counts, in one query; the database is the truth."""
    counts = dict(batch.rows.values_list("outcome").annotate(n=Count("id")).order_by())
    return {
        "placed": counts.get(BatchRow.Outcome.PLACED, 0),
        "failed": counts.get(BatchRow.Outcome.FAILED, 0),
        "pending": counts.get(BatchRow.Outcome.PENDING, 0),
        "rejected": counts.get(BatchRow.Outcome.REJECTED, 0),
    }


def batches_with_progress(batches: QuerySet[Batch]) -> QuerySet[Batch]:
    """The same counts as `batch_progress`, annotated on a queryset: one query for a whole page of batches."""

    def count(outcome: str) -> Count:
        return Count("rows", filter=Q(rows__outcome=outcome))

    return batches.annotate(
        placed=count(BatchRow.Outcome.PLACED),
        failed=count(BatchRow.Outcome.FAILED),
        pending=count(BatchRow.Outcome.PENDING),
    )


def row_to_place(*, batch_id: UUID | str, row_index: int) -> BatchRow:
    """A row as placing reads it first, with its batch (only the owner loaded): one indexed SELECT written out,
    because building it through the ORM cost more CPU than the whole rest of placing a row in one statement.

    Raises BatchRow.DoesNotExist as `get` would."""
    sql, fields = _row_to_place_query(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [BatchRow._meta.get_field("batch").get_db_prep_value(batch_id, connection), row_index])
        found = cursor.fetchone()
    if found is None:
        raise BatchRow.DoesNotExist(f"batch {batch_id} has no row {row_index}")
    values = [_from_db(field, converters, value) for (field, converters), value in zip(fields, found, strict=False)]
    row = BatchRow.from_db(connection.alias, [field.attname for field, _ in fields], values)
    row.batch = Batch.from_db(connection.alias, ["id", "owner_id"], [row.batch_id, found[-1]])
    return row


Converter = Callable[[Any, Any, Any], Any]


@cache
def _row_to_place_query(vendor: str) -> tuple[str, list[tuple[Field[Any, Any], list[Converter]]]]:
    """The SQL of row_to_place on this database, and the row's fields with what the ORM converts their values by."""
    fields = [
        (field, [*connection.ops.get_db_converters(field.cached_col), *field.get_db_converters(connection)])
        for field in BatchRow._meta.concrete_fields
    ]
    columns = [f"r.{quoted_column(BatchRow, field.name)}" for field, _ in fields] + [
        f"b.{quoted_column(Batch, 'owner')}"
    ]
    sql = (
        f"SELECT {', '.join(columns)}"
        f" FROM {quoted_table(BatchRow)} r"
        f" JOIN {quoted_table(Batch)} b ON b.{quoted_column(Batch, 'id')} = r.{quoted_column(BatchRow, 'batch')}"
        f" WHERE r.{quoted_column(BatchRow, 'batch')} = %s AND r.{quoted_column(BatchRow, 'row_index')} = %s"
    )
    return sql, fields


def batch_results_from_database(batch: Batch) -> list[dict[str, Any]]:
    """The order array as the database records it (PlacementResult.entry), for finishing a batch whose
    callback was lost."""
    settled = batch.rows.filter(outcome__in=[BatchRow.Outcome.PLACED, BatchRow.Outcome.FAILED])
    return [
        PlacementResult(row=row_index, ok=outcome == BatchRow.Outcome.PLACED).entry()
        for row_index, outcome in settled.order_by("row_index").values_list("row_index", "outcome")
    ]


def batches_stuck_in_placing(*, timeout: timedelta, now: datetime | None = None) -> list[Batch]:
    """Batches still placing with no progress for `timeout`: dispatch lost, chord lost, callback lost.

    Progress is the latest of creation, dispatch and any row settling, so a large batch that is
    still moving is left alone.
    """
    now = now or timezone.now()
    cutoff = now - timeout
    return list(
        Batch.objects.filter(status=Batch.Status.PLACING, created_at__lte=cutoff)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=cutoff))
        .annotate(last_settled=Max("rows__settled_at"))
        .filter(Q(last_settled__isnull=True) | Q(last_settled__lte=cutoff))
        .order_by("created_at")
    )


def _from_db(field: Field[Any, Any], converters: list[Converter], value: Any) -> Any:
    # What the ORM does to a value it reads (JSON is decoded here).
    for converter in converters:
        value = converter(value, field.cached_col, connection)
    return value
