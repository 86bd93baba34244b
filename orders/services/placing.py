"""The order interface (seed step A2): place one accepted row of a batch and report the result."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import messages, registry
from orders.models import BatchRow, Order
from orders.registry import PlacementRefused
from orders.results import PlacementResult

logger = logging.getLogger(__name__)


def order_place(*, batch_id, row_index: int) -> PlacementResult:
    """Place one row. Idempotent: a row that already has an outcome returns that outcome again.

    The row lock serialises a redelivered task with the original, so a row never yields two orders;
    the (batch, row_index) unique constraint on Order backs that up in the database.
    """
    with transaction.atomic():
        row = BatchRow.objects.select_for_update().select_related("batch").get(batch_id=batch_id, row_index=row_index)
        if row.outcome == BatchRow.Outcome.PLACED:
            return PlacementResult.from_row(row, Order.objects.only("pk", "amount").get(batch_id=batch_id, row_index=row_index))
        if row.outcome == BatchRow.Outcome.FAILED:
            return PlacementResult.from_row(row)
        if row.outcome == BatchRow.Outcome.REJECTED:
            raise ValueError(f"row {row_index} of batch {batch_id} was rejected at submission and is never placed")

        order = None
        try:
            # A savepoint, so that a refusal after a partial write (stock taken, then a clash on the
            # reference) leaves nothing behind.
            with transaction.atomic():
                order = registry.get(row.kind).place(batch=row.batch, row=row)
        except PlacementRefused as refusal:
            row.outcome, row.failure_code, row.failure_message = BatchRow.Outcome.FAILED, refusal.code, refusal.message
        except IntegrityError:
            # The only clash a row can cause is on its reference, taken since it was validated.
            if row.reference is None or not Order.objects.filter(
                owner_id=row.batch.owner_id, reference=row.reference
            ).exists():
                raise
            row.outcome, row.failure_code = BatchRow.Outcome.FAILED, "reference_used"
            row.failure_message = str(messages.REFERENCE_USED).format(reference=row.reference)
        else:
            row.outcome = BatchRow.Outcome.PLACED
        row.settled_at = timezone.now()
        row.save(update_fields=["outcome", "failure_code", "failure_message", "settled_at"])
    return PlacementResult.from_row(row, order)
