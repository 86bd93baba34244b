"""Write operations of the orders app: submission, placing, finalisation and the batch lifecycle."""

from orders.services.finalisation import batch_finalize, batch_mark_dispatched, batch_recover
from orders.services.lifecycle import (
    BatchError,
    batch_cancel,
    batch_close_unpaid,
    batch_mark_paid,
    order_mark_fulfilled,
    order_mark_refunded,
)
from orders.services.placing import order_place
from orders.services.submission import (
    DISPATCH_TASK,
    IdempotencyConflict,
    Submission,
    SubmissionRejected,
    batch_retry_failed,
    batch_submit,
    rows_validate,
)

__all__ = [
    "DISPATCH_TASK",
    "BatchError",
    "IdempotencyConflict",
    "Submission",
    "SubmissionRejected",
    "batch_cancel",
    "batch_close_unpaid",
    "batch_finalize",
    "batch_mark_dispatched",
    "batch_mark_paid",
    "batch_recover",
    "batch_retry_failed",
    "batch_submit",
    "order_mark_fulfilled",
    "order_mark_refunded",
    "order_place",
    "rows_validate",
]
