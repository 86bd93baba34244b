"""Write operations of the payments app.

The orders app hands a placed batch over through the `Billing` it was given (payments/billing.py), which
records the merged payment here. A shopper pays it through attempts, one per try on a rail. Money moves only
on a rail's word: a verified notification (`notification_apply`), its answer to a query (the reconcile and
expiry jobs) or its signed answer to a refund request; all go through the same functions. Each rail's daily
bill is compared with our records (`statement_reconcile`) and what differs is noted for staff.

Locks follow orders/locking.py (batch → payment → attempts → orders → refunds). No rail is called while a
lock is held: starting an attempt, closing one and requesting a refund record the intent first, call the
rail after commit, and apply its answer in a short transaction of their own.
"""

from payments.services.attempts import (
    CLOSE_TASK,
    attempt_apply_closed,
    attempt_apply_failure,
    attempt_apply_success,
    attempt_close_at_rail,
    attempt_reconcile,
    attempt_start,
    attempts_close_open,
    payment_reconcile,
)
from payments.services.notifications import UnknownAttempt, notification_apply
from payments.services.outcomes import Applied, AttemptNotStarted, PaymentError
from payments.services.payments import (
    payment_cancel_for_batch,
    payment_create_for_batch,
    payment_expire,
    payment_pay_url,
)
from payments.services.refunds import (
    GROUP_TASK,
    REFUND_QUERY_AFTER,
    REFUND_REQUEST_RETRY_AFTER,
    SEND_TASK,
    grouping_delay,
    grouping_due_at,
    payment_refund_order,
    refund_apply_failure,
    refund_apply_success,
    refund_query,
    refund_record,
    refund_request_confirm,
    refund_request_fail,
    refund_request_send,
    refunds_group,
    refunds_request_unanswered,
)
from payments.services.statements import (
    StatementOutcome,
    mismatches_resolve,
    statement_days_due,
    statement_reconcile,
)

__all__ = [
    "CLOSE_TASK",
    "GROUP_TASK",
    "REFUND_QUERY_AFTER",
    "REFUND_REQUEST_RETRY_AFTER",
    "SEND_TASK",
    "Applied",
    "AttemptNotStarted",
    "PaymentError",
    "StatementOutcome",
    "UnknownAttempt",
    "attempt_apply_closed",
    "attempt_apply_failure",
    "attempt_apply_success",
    "attempt_close_at_rail",
    "attempt_reconcile",
    "attempt_start",
    "attempts_close_open",
    "grouping_delay",
    "grouping_due_at",
    "mismatches_resolve",
    "notification_apply",
    "payment_cancel_for_batch",
    "payment_create_for_batch",
    "payment_expire",
    "payment_pay_url",
    "payment_reconcile",
    "payment_refund_order",
    "refund_apply_failure",
    "refund_apply_success",
    "refund_query",
    "refund_record",
    "refund_request_confirm",
    "refund_request_fail",
    "refund_request_send",
    "refunds_group",
    "refunds_request_unanswered",
    "statement_days_due",
    "statement_reconcile",
]
