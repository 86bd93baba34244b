"""The payments app's part of the invariant checker (orders/invariants.py), registered in PaymentsConfig.ready().

Words used below: a payment is *paid* when its status is succeeded, partially refunded or refunded. An
attempt *captured* money when a rail reported it paid: it is the payment's success, or unhonoured (paid when
the payment was paid already, or closed) and then refunded whole.
"""

from __future__ import annotations

from django.db.models import Count, Exists, F, OuterRef, Q, Sum

from orders.invariants import Context, Found, Invariant
from orders.models import Batch, BatchRow, Order
from orders.sql import quoted_table
from payments.models import Payment, PaymentAllocation, PaymentAttempt, Refund, RefundRequest
from payments.providers import refund_limits
from payments.services import REFUND_REQUEST_RETRY_AFTER

PAID = (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.REFUNDED)
ORDER_UNPAID = (Order.Status.AWAITING_PAYMENT, *Order.RELEASED_STATUSES)
# Placing ended with at least one order, so the batch was handed to payments (orders.services.batch_finalize).
BATCH_BILLED = (Batch.Status.AWAITING_PAYMENT, Batch.Status.PAID, Batch.Status.EXPIRED, Batch.Status.CANCELLED)
CAPTURED = tuple(str(status) for status in PaymentAttempt.CAPTURED)


# --- SPEC 7.2 and 7.3: one payment per batch, for exactly its placed orders, once placing is over ----------


def _batch_with_two_payments(context: Context) -> Found:
    # The one-to-one on Payment.batch forbids it; the check is for the day that changes.
    payments = quoted_table(Payment)
    return (
        f"SELECT p.id FROM {payments} p JOIN (SELECT batch_id FROM {payments} "
        "GROUP BY batch_id HAVING COUNT(*) > 1) twice USING (batch_id)",
        [],
    )


def _batch_without_payment(context: Context) -> Found:
    payment = Payment.objects.filter(batch_id=OuterRef("pk"))
    return Batch.objects.filter(status__in=BATCH_BILLED).exclude(Exists(payment)).values_list("pk")


def _payment_before_placing_finished(context: Context) -> Found:
    pending_row = BatchRow.objects.filter(batch_id=OuterRef("batch_id"), outcome=BatchRow.Outcome.PENDING)
    return Payment.objects.filter(Q(batch__status=Batch.Status.PLACING) | Exists(pending_row)).values_list("pk")


def _payment_amount_differs_from_allocations(context: Context) -> Found:
    return (
        Payment.objects.annotate(allocated=Sum("allocations__amount"))
        .filter(Q(allocated__isnull=True) | ~Q(amount=F("allocated")))
        .values_list("pk")
    )


def _order_not_allocated_exactly(context: Context) -> Found:
    # Every order of a billed batch is allocated once (the one-to-one), to its own batch's payment, at its
    # own amount: together with the check above, a payment's amount is the sum of its batch's orders.
    return (
        f"SELECT o.id FROM {quoted_table(Order)} o "
        f"JOIN {quoted_table(Payment)} batch_payment ON batch_payment.batch_id = o.batch_id "
        f"LEFT JOIN {quoted_table(PaymentAllocation)} a ON a.order_id = o.id "
        f"LEFT JOIN {quoted_table(Payment)} allocated_to ON allocated_to.id = a.payment_id "
        "WHERE a.id IS NULL OR a.amount <> o.amount OR allocated_to.batch_id <> o.batch_id",
        [],
    )


# --- SPEC 7.5: money moves only on the gateway's word; refunds never exceed what was paid ------------------


def _order_paid_without_succeeded_payment(context: Context) -> Found:
    return (
        Order.objects.exclude(status__in=ORDER_UNPAID).exclude(allocation__payment__status__in=PAID).values_list("pk")
    )


def _paid_payment_not_applied(context: Context) -> Found:
    unpaid_order = PaymentAllocation.objects.filter(payment=OuterRef("pk"), order__status__in=ORDER_UNPAID)
    return (
        Payment.objects.filter(status__in=PAID)
        .filter(~Q(batch__status=Batch.Status.PAID) | Exists(unpaid_order))
        .values_list("pk")
    )


def _refunds_exceed_payment(context: Context) -> Found:
    # The orders' refunds: within what the payment took, and its refunded amount is what came back of them.
    paid = ", ".join(["%s"] * len(PAID))
    return (
        f"SELECT p.id FROM {quoted_table(Payment)} p "
        "LEFT JOIN (SELECT payment_id, SUM(amount) FILTER (WHERE status <> %s) AS live, "
        "SUM(amount) FILTER (WHERE status = %s) AS done "
        f"FROM {quoted_table(Refund)} WHERE kind = %s GROUP BY payment_id) r ON r.payment_id = p.id "
        "WHERE p.refunded_amount <> COALESCE(r.done, 0) OR COALESCE(r.live, 0) > CASE "
        f"WHEN p.status IN ({paid}) THEN p.amount ELSE 0 END",
        [str(value) for value in (Refund.Status.FAILED, Refund.Status.SUCCEEDED, Refund.Kind.SHARE, *PAID)],
    )


def _refunds_exceed_attempt(context: Context) -> Found:
    # Every refund, through the rail of the attempt it refunds: never more than that attempt captured.
    captured = ", ".join(["%s"] * len(CAPTURED))
    return (
        f"SELECT a.id FROM {quoted_table(PaymentAttempt)} a "
        "LEFT JOIN (SELECT attempt_id, SUM(amount) FILTER (WHERE status <> %s) AS live, "
        "SUM(amount) FILTER (WHERE status = %s) AS done "
        f"FROM {quoted_table(Refund)} GROUP BY attempt_id) r ON r.attempt_id = a.id "
        "WHERE a.refunded_amount <> COALESCE(r.done, 0) OR COALESCE(r.live, 0) > CASE "
        f"WHEN a.status IN ({captured}) THEN a.amount ELSE 0 END",
        [str(Refund.Status.FAILED), str(Refund.Status.SUCCEEDED), *CAPTURED],
    )


def _refund_of_the_wrong_attempt(context: Context) -> Found:
    # An order's share comes out of the attempt that paid the payment; an unhonoured capture is given back
    # through the attempt that captured it; and the refund's payment is its attempt's.
    succeeded, unhonoured = PaymentAttempt.Status.SUCCEEDED, PaymentAttempt.Status.UNHONOURED
    return Refund.objects.filter(
        ~Q(payment_id=F("attempt__payment_id"))
        | (Q(kind=Refund.Kind.SHARE) & ~Q(attempt__status=succeeded))
        | (Q(kind=Refund.Kind.UNHONOURED) & ~Q(attempt__status=unhonoured))
    ).values_list("pk")


def _refund_disagrees_with_order(context: Context) -> Found:
    orders, refunds = quoted_table(Order), quoted_table(Refund)
    return (
        f"SELECT o.id FROM {orders} o WHERE o.status = %s AND NOT EXISTS "
        f"(SELECT 1 FROM {refunds} r WHERE r.order_id = o.id AND r.status = %s) "
        f"UNION SELECT r.order_id FROM {refunds} r JOIN {orders} o ON o.id = r.order_id "
        "WHERE r.status = %s AND o.status <> %s",
        [
            str(Order.Status.REFUNDED),
            str(Refund.Status.SUCCEEDED),
            str(Refund.Status.SUCCEEDED),
            str(Order.Status.REFUNDED),
        ],
    )


# --- Refund requests: what the rails were asked for is what the refunds add up to, within their limits -----


def _refund_request_disagrees_with_refunds(context: Context) -> Found:
    # A request is asked for the sum of the refunds it carries, all of its own attempt and payment; its
    # outcome is theirs (a pending request's refunds are pending: its outcome settles them all at once).
    requests, refunds = quoted_table(RefundRequest), quoted_table(Refund)
    return (
        f"SELECT q.id FROM {requests} q LEFT JOIN {refunds} r ON r.request_id = q.id GROUP BY q.id "
        "HAVING COUNT(r.id) = 0 OR q.amount <> SUM(r.amount) "
        "OR SUM(CASE WHEN r.status <> q.status OR r.attempt_id <> q.attempt_id OR r.payment_id <> q.payment_id "
        "THEN 1 ELSE 0 END) > 0",
        [],
    )


def _refund_settled_without_request(context: Context) -> Found:
    # Only a share waiting to be grouped has no request; the money moves only on a request's outcome.
    return (
        Refund.objects.filter(request__isnull=True)
        .exclude(kind=Refund.Kind.SHARE, status=Refund.Status.PENDING)
        .values_list("pk")
    )


def _refund_requests_over_the_rails_limit(context: Context) -> Found:
    limits = refund_limits()
    if not limits:
        return RefundRequest.objects.none().values_list("pk")
    over = Q()
    for provider, limit in limits.items():
        over |= Q(provider=provider, requests__gt=limit)
    return PaymentAttempt.objects.annotate(requests=Count("refund_requests")).filter(over).values_list("pk")


# --- Attempts and SPEC 7.8: one attempt pays a payment; any other capture goes back -----------------------


def _payment_success_disagrees_with_attempts(context: Context) -> Found:
    # A paid payment has exactly one succeeded attempt; an unpaid one has none (the unique constraint keeps
    # it to one; the check is for the day that changes).
    successes = Count("attempts", filter=Q(attempts__status=PaymentAttempt.Status.SUCCEEDED))
    counted = Payment.objects.annotate(successes=successes)
    return counted.filter((Q(status__in=PAID) & ~Q(successes=1)) | (~Q(status__in=PAID) & ~Q(successes=0))).values_list(
        "pk"
    )


def _attempt_amount_differs_from_payment(context: Context) -> Found:
    return PaymentAttempt.objects.exclude(amount=F("payment__amount")).values_list("pk")


def _unhonoured_capture_not_refunded(context: Context) -> Found:
    refund = Refund.objects.filter(attempt=OuterRef("pk"), kind=Refund.Kind.UNHONOURED).exclude(
        status=Refund.Status.FAILED
    )
    return (
        PaymentAttempt.objects.filter(status=PaymentAttempt.Status.UNHONOURED).exclude(Exists(refund)).values_list("pk")
    )


# --- SPEC 7.4 and 7.7: promised work is not stuck past the time its periodic job takes it up --------------


def _refund_request_stuck(context: Context) -> Found:
    cutoff = context.redrive_cutoff(
        after_seconds=REFUND_REQUEST_RETRY_AFTER.total_seconds(), job="payments.tasks.request_unanswered_refunds"
    )
    return RefundRequest.objects.filter(
        status=RefundRequest.Status.PENDING, requested_at__isnull=True, created_at__lte=cutoff
    ).values_list("pk")


def _payment_stuck_past_expiry(context: Context) -> Found:
    cutoff = context.redrive_cutoff(after_seconds=0, job="payments.tasks.expire_unpaid_payments")
    return Payment.objects.filter(status=Payment.Status.PENDING, expires_at__lte=cutoff).values_list("pk")


INVARIANTS = [
    Invariant("batch_with_two_payments", "payments", "a batch has more than one payment", _batch_with_two_payments),
    Invariant(
        "batch_without_payment",
        "batches",
        "a batch finished placing with orders but has no payment",
        _batch_without_payment,
    ),
    Invariant(
        "payment_before_placing_finished",
        "payments",
        "a payment exists although a row of its batch has no outcome yet",
        _payment_before_placing_finished,
    ),
    Invariant(
        "payment_amount_differs_from_allocations",
        "payments",
        "a payment's amount is not the sum of its allocations to orders",
        _payment_amount_differs_from_allocations,
    ),
    Invariant(
        "order_not_allocated_exactly",
        "orders",
        "an order of a billed batch is not covered by its batch's payment at exactly its amount",
        _order_not_allocated_exactly,
    ),
    Invariant(
        "order_paid_without_succeeded_payment",
        "orders",
        "an order is paid (or past paid) but no succeeded payment covers it",
        _order_paid_without_succeeded_payment,
    ),
    Invariant(
        "paid_payment_not_applied",
        "payments",
        "a payment succeeded but its batch or one of its orders is not marked paid",
        _paid_payment_not_applied,
    ),
    Invariant(
        "refunds_exceed_payment",
        "payments",
        "the orders' refunds under way or made exceed what the payment took, or its refunded amount is not the "
        "sum of the ones the rail confirmed",
        _refunds_exceed_payment,
    ),
    Invariant(
        "refunds_exceed_attempt",
        "attempts",
        "refunds under way or made exceed what a rail captured on the attempt, or the attempt's refunded amount "
        "is not the sum of its confirmed refunds",
        _refunds_exceed_attempt,
    ),
    Invariant(
        "refund_of_the_wrong_attempt",
        "refunds",
        "a refund gives back money of an attempt that did not take it (an order's share of another attempt than "
        "the payment's success, an unhonoured refund of an honoured attempt, or an attempt of another payment)",
        _refund_of_the_wrong_attempt,
    ),
    Invariant(
        "refund_disagrees_with_order",
        "orders",
        "an order is refunded without a refund the gateway confirmed, or the other way round",
        _refund_disagrees_with_order,
    ),
    Invariant(
        "payment_success_disagrees_with_attempts",
        "payments",
        "a paid payment has not exactly one succeeded attempt, or an unpaid one has a succeeded attempt",
        _payment_success_disagrees_with_attempts,
    ),
    Invariant(
        "attempt_amount_differs_from_payment",
        "attempts",
        "an attempt asks a rail for another amount than its payment's",
        _attempt_amount_differs_from_payment,
    ),
    Invariant(
        "unhonoured_capture_not_refunded",
        "attempts",
        "a rail captured money on an attempt the shop could not honour (paid twice, or after the payment closed) "
        "and no refund returns it",
        _unhonoured_capture_not_refunded,
    ),
    Invariant(
        "refund_request_disagrees_with_refunds",
        "refund requests",
        "a refund request's amount is not the sum of the refunds it carries, carries none, or one of them has "
        "another status, attempt or payment than the request",
        _refund_request_disagrees_with_refunds,
    ),
    Invariant(
        "refund_settled_without_request",
        "refunds",
        "a refund other than an order's share waiting to be grouped is carried by no refund request",
        _refund_settled_without_request,
    ),
    Invariant(
        "refund_requests_over_the_rails_limit",
        "attempts",
        "an attempt has more refund requests than its rail takes per payment (WeChat Pay: 50)",
        _refund_requests_over_the_rails_limit,
    ),
    Invariant(
        "refund_request_stuck",
        "refund requests",
        "a refund request was never acknowledged by the gateway, past the time it is asked again",
        _refund_request_stuck,
    ),
    Invariant(
        "payment_stuck_past_expiry",
        "payments",
        "a payment is still pending past its expiry and the expiry job's next run",
        _payment_stuck_past_expiry,
    ),
]
