"""Reads of the orders app that are more than a one-liner."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from orders.models import Batch, BatchRow
from orders.results import PlacementResult


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
