"""A batch's whole life run in the test's own process, step by step through the services, without the worker:
placed, paid at the sandbox gateway, topped up, refunds confirmed. What the tasks would do, in the same order,
so that a test can look at every state in between (tasks queued in the outbox are never published here: the
test's transaction never commits)."""

from __future__ import annotations

import contextlib
import secrets
from datetime import timedelta

from django.utils import timezone

from orders import selectors, services
from orders.models import Batch
from payments import services as payment_services
from payments.models import Payment, PaymentAttempt, Refund, RefundRequest
from payments.providers import Notification
from payments.sandbox import gateway
from recharge import services as recharge_services
from recharge.models import Fulfilment
from tests.payments.factories import PaymentAttemptFactory
from tests.payments.sandbox import charge_reference, open_attempt


def batch_placed(owner, rows, **submit) -> Batch:
    """Submit rows (keyword arguments go to batch_submit), place every accepted row and end placing."""
    batch = services.batch_submit(owner=owner, rows=rows, **submit).batch
    for row in batch.rows.exclude(outcome="rejected"):
        services.order_place(batch_id=batch.pk, row_index=row.row_index)
    services.batch_finalize(batch_id=batch.pk, results=selectors.batch_results_from_database(batch))
    batch.refresh_from_db()
    return batch


def batch_paid(batch: Batch, *, at_the_gateway: bool = True) -> Payment:
    """The shopper pays at the sandbox gateway and its notification is applied (as the webhook would).

    Without `at_the_gateway` only the notification is applied (to an attempt recorded here alone): the gateway
    has no charge for it and refuses to refund it, as a real one would refuse a refund it cannot make.
    """
    payment = Payment.objects.get(batch=batch)
    if at_the_gateway:
        attempt = open_attempt(payment)
        gateway.charge_decide(charge_reference=charge_reference(payment), pay=True)
    else:
        attempt = PaymentAttemptFactory(payment=payment)
    _notify(attempt, "payment.succeeded", payment.amount)
    batch.refresh_from_db()
    return Payment.objects.get(pk=payment.pk)


def top_ups_run(batch: Batch, *, steps: int = 10) -> None:
    """Run every fulfilment of the batch to its end: top-ups, retries and status queries, as the tasks would."""
    for _ in range(steps):
        open_ones = Fulfilment.objects.filter(order__batch=batch).exclude(status__in=["succeeded", "failed"])
        if not open_ones.exists():
            return
        for fulfilment in open_ones:
            if fulfilment.status == Fulfilment.Status.UNKNOWN:
                recharge_services.fulfilment_query(order_id=fulfilment.order_id)
            else:
                recharge_services.fulfilment_attempt(order_id=fulfilment.order_id)
    raise AssertionError(f"fulfilments of batch {batch.pk} still open after {steps} steps")


def refunds_requested(batch: Batch) -> None:
    """What the grouping and sending tasks do a window later: the refunds waiting for the batch's payment
    become one request, asked for at the gateway (a refusal fails it and them)."""
    payment = Payment.objects.get(batch=batch)
    waiting = payment.refunds.filter(status=Refund.Status.PENDING, request__isnull=True)
    for attempt_id in set(waiting.values_list("attempt_id", flat=True)):
        payment_services.refunds_group(attempt_id=attempt_id, now=timezone.now() + timedelta(days=7), requeue=False)
    unsent = payment.refund_requests.filter(status=RefundRequest.Status.PENDING, requested_at__isnull=True)
    for request_id in unsent.values_list("pk", flat=True):
        # A refusal leaves it failed and the payment flagged, as the task does.
        with contextlib.suppress(payment_services.PaymentError):
            payment_services.refund_request_send(request_id=request_id)


def refunds_confirmed(batch: Batch) -> list[Refund]:
    """The refunds recorded for the batch's payment are requested, and the gateway confirms every request
    (its notifications applied)."""
    refunds_requested(batch)
    payment = Payment.objects.get(batch=batch)
    pending = list(payment.refunds.filter(status=Refund.Status.PENDING))
    for request in payment.refund_requests.filter(status=RefundRequest.Status.PENDING).select_related("attempt"):
        _notify(request.attempt, "refund.succeeded", request.amount, refund_reference=request.reference)
    return pending


def _notify(attempt: PaymentAttempt, event_type: str, amount, **extra) -> None:
    payment_services.notification_apply(
        provider_name=attempt.provider,
        notification=Notification(
            event_id=f"evt_test_{secrets.token_hex(6)}",
            type=event_type,
            reference=attempt.reference,
            amount=amount,
            currency=attempt.currency,
            **extra,
        ),
    )
