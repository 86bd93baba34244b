"""When notifications stop: the gateway is queried; when nobody pays: the payment expires."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Batch, Order, OutboxMessage, Product
from payments import services
from payments.models import GatewayEvent, Payment, PaymentAttempt, Refund
from payments.sandbox import gateway
from payments.sandbox.models import SandboxCharge
from payments.tasks import expire_unpaid_payments, reconcile_pending_payments
from tests.payments.conftest import gateway_event
from tests.payments.factories import PaymentAttemptFactory
from tests.payments.sandbox import charge_reference, open_attempt, start_attempt


@pytest.fixture
def batch(placed_batch):
    return placed_batch()


def overdue(payment, minutes=1):
    """Past its expiry by `minutes` (before it, when negative), with every attempt an hour old."""
    Payment.objects.filter(pk=payment.pk).update(
        expires_at=timezone.now() - timedelta(minutes=minutes), created_at=timezone.now() - timedelta(hours=1)
    )
    PaymentAttempt.objects.filter(payment=payment).update(created_at=timezone.now() - timedelta(hours=1))


def test_an_unpaid_payment_expires_with_its_orders_and_batch_and_releases_stock(batch):
    assert set(Product.objects.values_list("stock", flat=True)) == {4}
    overdue(batch.payment)

    outcome = expire_unpaid_payments()

    assert outcome == {str(batch.payment.pk): "expired"}
    batch.refresh_from_db()
    assert batch.status == Batch.Status.EXPIRED
    assert batch.payment.status == Payment.Status.EXPIRED
    assert set(batch.orders.values_list("status", flat=True)) == {Order.Status.EXPIRED}
    assert set(Product.objects.values_list("stock", flat=True)) == {5}


def test_a_payment_not_yet_due_does_not_expire(batch):
    assert expire_unpaid_payments() == {}
    batch.payment.refresh_from_db()
    assert batch.payment.status == Payment.Status.PENDING


def test_a_late_success_after_expiry_is_flagged_not_applied_and_its_money_refunded(batch, post_webhook):
    charge_reference(batch.payment)  # the customer opened the gateway's page
    overdue(batch.payment)
    expire_unpaid_payments()

    response = post_webhook(gateway_event(batch.payment))

    assert response.status_code == 200
    batch.refresh_from_db()
    assert batch.status == Batch.Status.EXPIRED
    assert set(batch.orders.values_list("status", flat=True)) == {Order.Status.EXPIRED}
    payment = batch.payment
    assert payment.status == Payment.Status.EXPIRED
    assert payment.needs_attention
    assert "already expired" in payment.attention_note
    event = GatewayEvent.objects.get()
    assert event.needs_attention and event.outcome == "not applied: payment was expired; refunding 60.00"
    attempt = PaymentAttempt.objects.get(payment=payment)
    assert (attempt.status, attempt.needs_attention) == (PaymentAttempt.Status.UNHONOURED, True)
    # recorded with the event; asked of the gateway after commit (tests/payments/test_late_success.py)
    refund = Refund.objects.get()
    assert (refund.payment, refund.attempt, refund.kind, refund.order, refund.amount) == (
        payment,
        attempt,
        "unhonoured",
        None,
        payment.amount,
    )


def test_a_payment_paid_at_the_gateway_whose_notification_was_lost_is_applied_by_reconciliation(batch):
    # given: the customer paid, but the notification never left the gateway (on_commit never fires here)
    gateway.charge_decide(charge_reference=charge_reference(batch.payment), pay=True)
    overdue(batch.payment, minutes=-30)  # old enough to reconcile, not yet due to expire

    outcome = reconcile_pending_payments()

    assert outcome == {str(batch.payment.pk): "payment succeeded; orders paid"}
    batch.refresh_from_db()
    assert batch.status == Batch.Status.PAID
    assert set(batch.orders.values_list("status", flat=True)) == {Order.Status.PAID}


def test_expiry_asks_the_gateway_first_and_applies_a_payment_it_reports_paid(batch):
    gateway.charge_decide(charge_reference=charge_reference(batch.payment), pay=True)
    overdue(batch.payment)

    outcome = expire_unpaid_payments()

    assert outcome == {str(batch.payment.pk): "payment succeeded; orders paid"}
    batch.refresh_from_db()
    assert batch.payment.status == Payment.Status.SUCCEEDED


def test_a_pending_payment_the_gateway_still_has_open_stays_pending(batch):
    charge_reference(batch.payment)  # the customer opened the gateway's page and left it
    overdue(batch.payment, minutes=-30)

    assert reconcile_pending_payments() == {str(batch.payment.pk): "gateway says open"}
    assert Payment.objects.get(pk=batch.payment.pk).status == Payment.Status.PENDING


def test_an_attempt_the_gateway_never_saw_stays_open(batch):
    attempt = PaymentAttemptFactory(payment=batch.payment)  # recorded; the process died before asking the gateway
    overdue(batch.payment, minutes=-30)

    assert reconcile_pending_payments() == {str(batch.payment.pk): "gateway says unknown"}
    assert Payment.objects.get(pk=batch.payment.pk).status == Payment.Status.PENDING
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == PaymentAttempt.Status.OPEN


def test_a_payment_nobody_tried_to_pay_is_not_asked_about(batch):
    overdue(batch.payment, minutes=-30)

    assert reconcile_pending_payments() == {}


def test_an_attempt_declined_at_the_gateway_whose_notification_was_lost_is_declined_by_reconciliation(batch):
    gateway.charge_decide(charge_reference=charge_reference(batch.payment), pay=False)
    overdue(batch.payment, minutes=-30)

    assert reconcile_pending_payments() == {str(batch.payment.pk): "attempt declined; payment pending"}
    assert PaymentAttempt.objects.get(payment=batch.payment).status == PaymentAttempt.Status.DECLINED
    batch.refresh_from_db()
    assert (batch.status, batch.payment.status) == (Batch.Status.AWAITING_PAYMENT, Payment.Status.PENDING)


def test_an_attempt_the_gateway_closed_is_closed_by_reconciliation(batch):
    reference = charge_reference(batch.payment)
    SandboxCharge.objects.filter(reference=reference).update(status=SandboxCharge.Status.CLOSED)
    overdue(batch.payment, minutes=-30)

    assert reconcile_pending_payments() == {str(batch.payment.pk): "attempt closed by the rail"}
    assert PaymentAttempt.objects.get(payment=batch.payment).status == PaymentAttempt.Status.CLOSED
    assert Payment.objects.get(pk=batch.payment.pk).status == Payment.Status.PENDING


def test_expiry_closes_the_open_attempts_here_and_queues_their_close_at_the_gateway(batch):
    first = open_attempt(batch.payment)
    gateway.charge_decide(charge_reference=charge_reference(batch.payment), pay=False)  # its news not here yet
    second = start_attempt(batch.payment)  # the shopper tries again, and leaves it open
    overdue(batch.payment)

    assert expire_unpaid_payments() == {str(batch.payment.pk): "expired"}

    # the expiry asked the gateway first: the first attempt is declined, the second still open, so closed
    statuses = dict(PaymentAttempt.objects.filter(payment=batch.payment).values_list("pk", "status"))
    assert statuses == {first.pk: "declined", second.pk: "closed"}
    assert list(OutboxMessage.objects.filter(task=services.CLOSE_TASK).values_list("args", flat=True)) == [[second.pk]]
    # what the outbox's task does, once the expiry committed
    assert services.attempt_close_at_rail(attempt_id=second.pk) == "closed at the rail"
    assert SandboxCharge.objects.get(merchant_reference=second.reference).status == SandboxCharge.Status.CLOSED


def test_a_payment_the_sweep_cannot_handle_does_not_keep_the_later_ones_waiting(placed_batch):
    # given: an older payment whose attempt names a rail this site no longer has, and a newer one paid at the
    # sandbox whose notification was lost
    stranded = placed_batch().payment
    PaymentAttemptFactory(payment=stranded, provider="retired-rail")
    paid = placed_batch().payment
    gateway.charge_decide(charge_reference=charge_reference(paid), pay=True)
    overdue(stranded, minutes=-30)
    overdue(paid, minutes=-30)

    outcome = reconcile_pending_payments()

    assert outcome == {str(stranded.pk): "failed: UnknownProvider", str(paid.pk): "payment succeeded; orders paid"}
    assert Payment.objects.get(pk=paid.pk).status == Payment.Status.SUCCEEDED
    assert Payment.objects.get(pk=stranded.pk).status == Payment.Status.PENDING
