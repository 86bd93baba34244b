"""When notifications stop: the gateway is queried; when nobody pays: the payment expires."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Batch, Order, Product
from payments.models import GatewayEvent, Payment, Refund
from payments.sandbox import gateway
from payments.tasks import expire_unpaid_payments, reconcile_pending_payments
from tests.payments.conftest import gateway_event
from tests.payments.sandbox import charge_reference


@pytest.fixture
def batch(placed_batch):
    return placed_batch()


def overdue(payment, minutes=1):
    Payment.objects.filter(pk=payment.pk).update(
        expires_at=timezone.now() - timedelta(minutes=minutes), created_at=timezone.now() - timedelta(hours=1)
    )


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
    # recorded with the event; asked of the gateway after commit (tests/payments/test_late_success.py)
    refund = Refund.objects.get()
    assert (refund.payment, refund.kind, refund.order, refund.amount) == (payment, "unhonoured", None, payment.amount)


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


def test_a_pending_payment_the_gateway_never_saw_stays_pending(batch):
    overdue(batch.payment, minutes=-30)

    assert reconcile_pending_payments() == {str(batch.payment.pk): "gateway says unknown"}
    assert Payment.objects.get(pk=batch.payment.pk).status == Payment.Status.PENDING
