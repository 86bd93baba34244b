"""Paying takes attempts: one pays the payment, a declined one leaves it payable, money captured on any other
is given back through that attempt's own rail and flagged; refunds go through the rails' interface."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from orders.invariants import invariants_check
from orders.models import Batch, Order
from payments import messages, services, signing
from payments.models import Payment, PaymentAttempt, Refund, RefundRequest
from payments.providers import ProviderError, ProviderUnavailable
from payments.sandbox import gateway
from payments.sandbox.models import SandboxCharge, SandboxNotification, SandboxRefund
from payments.tasks import expire_unpaid_payments
from tests.orders.flows import refunds_requested
from tests.payments.refunding import refund_order_now
from tests.payments.sandbox import charge_of, deliver, start_attempt


def start(payment, rail="qrtest", method="qr") -> PaymentAttempt:
    return services.attempt_start(
        payment_reference=payment.reference, provider_name=rail, method=method, client_ip="127.0.0.1"
    )


def notify(client, attempt: PaymentAttempt, event_type: str):
    """Deliver the sandbox's latest notification of this type (the qrtest rail's are the sandbox's) to the
    webhook of the attempt's own rail."""
    return post_to(client, attempt.provider, SandboxNotification.objects.filter(type=event_type).latest("pk").body)


def post_to(client, rail: str, body: str):
    signature = signing.sign(settings.SANDBOX_WEBHOOK_SECRET, body.encode())
    url = f"/payments/webhooks/{rail}/"
    return client.post(url, body.encode(), content_type="application/json", HTTP_SANDBOX_SIGNATURE=signature)


def paid(client, payment, rail="qrtest") -> PaymentAttempt:
    attempt = start(payment, rail, "qr" if rail == "qrtest" else "page")
    gateway.charge_decide(charge_reference=charge_of(attempt), pay=True)
    assert notify(client, attempt, "payment.succeeded").status_code == 200
    attempt.refresh_from_db()
    return attempt


@pytest.fixture
def batch(placed_batch):
    return placed_batch()


def assert_invariants_hold():
    report = invariants_check()
    assert report.ok, report.summary()


# --- Two successes -------------------------------------------------------------------------------------------


def test_two_attempts_both_paid_one_counts_and_the_other_is_refunded_through_its_own_rail(
    live_server, worker, test_rail, placed_batch, client, wait_until, monkeypatch
):
    """Real worker, Redis, PostgreSQL and HTTP: the sandbox's notifications and its refund's confirmation travel
    as in production. The shopper scans the QR test rail's code and pays, but that rail's notification is held
    up (the broker holds it: the outbox publishes it later); meanwhile they pay on the sandbox too, which pays
    the payment. Once one attempt pays, the others are closed at their rails: a capture already made stays."""
    from orders import outbox

    batch = placed_batch()
    payment = batch.payment
    on_sandbox, on_qr = start(payment, "sandbox", "page"), start(payment, "qrtest", "qr")
    with monkeypatch.context() as broker_slow:
        broker_slow.setattr(outbox, "_broker_down_until", time.monotonic() + 60)
        gateway.charge_decide(charge_reference=charge_of(on_qr), pay=True)

    gateway.charge_decide(charge_reference=charge_of(on_sandbox), pay=True)
    wait_until(lambda: Payment.objects.filter(pk=payment.pk, status="succeeded").exists(), timeout=30, what="paid")
    time.sleep(outbox.SWEEP_GRACE.total_seconds())
    outbox.publish_due()  # the QR rail's notification, at last

    refund = wait_until(
        lambda: Refund.objects.filter(attempt=on_qr, status=Refund.Status.SUCCEEDED).first(),
        timeout=30,
        what="the second capture to be refunded",
    )
    # exactly one attempt counts; the payment, its batch and orders are paid once
    statuses = dict(PaymentAttempt.objects.filter(payment=payment).values_list("provider", "status"))
    assert statuses == {"sandbox": "succeeded", "qrtest": "unhonoured"}
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == (Payment.Status.SUCCEEDED, Decimal("0.00"))
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.PAID
    assert set(Order.objects.filter(batch=batch).values_list("status", flat=True)) == {Order.Status.PAID}
    # the other capture went back, whole, through the rail that took it, and staff are told
    assert (refund.kind, refund.amount, refund.order) == (Refund.Kind.UNHONOURED, Decimal("60.00"), None)
    assert refund.request.requested_at is not None and refund.request.attempt == on_qr  # asked by the worker
    assert list(refund.request.refunds.all()) == [refund]  # a request of its own, never grouped
    assert list(SandboxRefund.objects.values_list("charge__merchant_reference", "amount")) == [
        (on_qr.reference, Decimal("60.00"))
    ]
    on_qr.refresh_from_db()
    assert on_qr.needs_attention and on_qr.refunded_amount == Decimal("60.00")
    assert payment.needs_attention
    assert payment.attention_note == str(messages.PAID_TWICE).format(reference=on_qr.reference)
    assert_invariants_hold()


def test_a_second_success_of_the_same_attempt_is_the_same_capture(batch, client, test_rail, post_webhook):
    attempt = paid(client, batch.payment)
    body = SandboxNotification.objects.get(type="payment.succeeded").body
    again = body.replace('"id": "evt_', '"id": "evt_again_')  # a new event id, the same capture

    response = post_to(client, "qrtest", again)

    assert response.json()["detail"] == "payment already succeeded"
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == PaymentAttempt.Status.SUCCEEDED
    assert not Refund.objects.exists()


# --- Declined, then paid -------------------------------------------------------------------------------------


def test_declined_on_one_rail_then_paid_on_another_and_a_share_refunded_through_the_one_that_paid(
    batch, client, test_rail
):
    declined = start(batch.payment, "sandbox", "page")
    gateway.charge_decide(charge_reference=charge_of(declined), pay=False)
    deliver(client, "payment.failed")
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.AWAITING_PAYMENT

    attempt = paid(client, batch.payment, "qrtest")

    batch.refresh_from_db()
    assert batch.status == Batch.Status.PAID and Payment.objects.filter(batch=batch).count() == 1
    order = batch.orders.get(row_index=1)
    refund = refund_order_now(order)
    assert refund.attempt_id == attempt.pk
    assert test_rail.refund_requests == [refund.request.reference]
    assert list(SandboxRefund.objects.values_list("charge__merchant_reference", flat=True)) == [attempt.reference]
    assert notify(client, attempt, "refund.succeeded").json()["detail"] == "refunded 20.00"
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    assert_invariants_hold()


# --- Expiry and cancel close open attempts -------------------------------------------------------------------


def test_expiry_closes_the_open_attempt_at_the_gateway_through_the_worker(
    live_server, worker, placed_batch, client, wait_until
):
    batch = placed_batch()
    attempt = start_attempt(batch.payment)
    Payment.objects.filter(pk=batch.payment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert expire_unpaid_payments() == {str(batch.payment.pk): "expired"}

    wait_until(
        lambda: SandboxCharge.objects.filter(merchant_reference=attempt.reference, status="closed").exists(),
        timeout=30,
        what="the attempt to be closed at the gateway",
    )
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == PaymentAttempt.Status.CLOSED
    # the gateway's page takes no money for it any more
    client.post(attempt.redirect_url, {"decision": "pay"})
    assert SandboxCharge.objects.get(merchant_reference=attempt.reference).status == "closed"


def test_a_success_that_crosses_the_close_is_refunded_through_the_attempts_rail(batch, client, committed):
    attempt = start_attempt(batch.payment)
    Payment.objects.filter(pk=batch.payment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expire_unpaid_payments()  # closed here; its close is on its way to the gateway...
    gateway.charge_decide(charge_reference=charge_of(attempt), pay=True)  # ...when the shopper pays
    assert services.attempt_close_at_rail(attempt_id=attempt.pk) == "closed at the rail"  # too late: paid

    with committed():
        response = deliver(client, "payment.succeeded")
    refunds_requested(batch)  # what the worker's task does with the request queued

    assert response.json()["detail"] == "not applied: payment was expired; refunding 60.00"
    attempt.refresh_from_db()
    assert (attempt.status, attempt.needs_attention) == (PaymentAttempt.Status.UNHONOURED, True)
    refund = Refund.objects.get(attempt=attempt)
    assert (refund.kind, refund.amount, refund.status) == (Refund.Kind.UNHONOURED, Decimal("60.00"), "pending")
    assert list(SandboxRefund.objects.values_list("charge__merchant_reference", flat=True)) == [attempt.reference]
    assert (
        deliver(client, "refund.succeeded").json()["detail"] == "refunded 60.00 captured after the payment was expired"
    )
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.EXPIRED
    assert_invariants_hold()


def test_cancelling_closes_every_open_attempt_but_not_a_declined_one(batch, client):
    declined, open_one = start_attempt(batch.payment), start_attempt(batch.payment)
    PaymentAttempt.objects.filter(pk=declined.pk).update(status=PaymentAttempt.Status.DECLINED)

    from orders import services as order_services

    order_services.batch_cancel(batch_id=batch.pk, owner=batch.owner)

    statuses = dict(PaymentAttempt.objects.filter(payment=batch.payment).values_list("pk", "status"))
    assert statuses == {declined.pk: "declined", open_one.pk: "closed"}


# --- Refunds through the rails' interface --------------------------------------------------------------------


def test_a_refund_the_rails_answer_says_is_done_is_applied_at_once(batch, client, test_rail):
    paid(client, batch.payment)
    test_rail.refund_moves_money = True
    order = batch.orders.get(row_index=0)

    refund = refund_order_now(order)

    assert refund.status == Refund.Status.SUCCEEDED and refund.requested_at is not None
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    payment = Payment.objects.get(pk=batch.payment.pk)
    assert (payment.status, payment.refunded_amount) == (Payment.Status.PARTIALLY_REFUNDED, Decimal("10.00"))
    # its notification, when it comes, changes nothing more
    assert notify(client, refund.attempt, "refund.succeeded").json()["detail"] == "refund already applied"
    assert_invariants_hold()


def test_a_refund_the_rail_could_not_take_is_asked_again_later_with_the_same_number(batch, client, test_rail):
    paid(client, batch.payment)
    test_rail.refund_error = ProviderUnavailable("SYSTEM_ERROR")
    order = batch.orders.get(row_index=2)

    refund = refund_order_now(order)
    request = refund.request

    assert (refund.status, request.status, request.requested_at) == ("pending", "pending", None)
    assert services.refunds_request_unanswered() == 0  # not yet: it was just asked
    RefundRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - services.REFUND_REQUEST_RETRY_AFTER)
    assert services.refunds_request_unanswered() == 1  # still unavailable: pending again
    test_rail.refund_error = None

    assert services.refunds_request_unanswered() == 1

    assert test_rail.refund_requests == [request.reference] * 3  # the same refund number, never a new one
    refund.refresh_from_db()
    request.refresh_from_db()
    assert request.status == Refund.Status.PENDING and request.requested_at is not None
    assert refund.requested_at == request.requested_at
    assert SandboxRefund.objects.get().merchant_reference == request.reference
    assert services.refunds_request_unanswered() == 0  # acknowledged: not asked for again


def test_a_refund_the_rail_refuses_fails_and_flags_the_payment(batch, client, test_rail):
    paid(client, batch.payment)
    test_rail.refund_error = ProviderError("REFUND_AMOUNT_ERROR")

    with pytest.raises(services.PaymentError) as refused:
        refund_order_now(batch.orders.first())

    assert str(refused.value).startswith("The payment gateway refused the refund: ")
    assert Refund.objects.get().status == Refund.Status.FAILED
    assert Payment.objects.get(pk=batch.payment.pk).needs_attention
    assert_invariants_hold()


def test_a_refund_acknowledged_but_never_confirmed_is_asked_about_and_applied(batch, client, test_rail):
    paid(client, batch.payment)
    refund = refund_order_now(batch.orders.first())
    assert refund.status == Refund.Status.PENDING  # the rail's notification never comes
    assert services.refunds_request_unanswered() == 0

    long_ago = timezone.now() - services.REFUND_QUERY_AFTER
    RefundRequest.objects.filter(refunds=refund).update(requested_at=long_ago, updated_at=long_ago)

    assert services.refunds_request_unanswered() == 1

    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.SUCCEEDED
    assert Order.objects.get(pk=refund.order.pk).status == Order.Status.REFUNDED
    assert_invariants_hold()


def test_a_refund_the_rail_reports_failed_is_failed_and_the_payment_flagged(batch, client, test_rail):
    attempt = paid(client, batch.payment)
    refund = refund_order_now(batch.orders.first())
    body = SandboxNotification.objects.get(type="refund.succeeded").body.replace("refund.succeeded", "refund.failed")

    response = post_to(client, attempt.provider, body)

    assert response.json()["detail"] == f"refund failed: {messages.RAIL_FAILED_REFUND}"
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.FAILED
    payment = Payment.objects.get(pk=batch.payment.pk)
    assert payment.needs_attention and refund.request.reference in payment.attention_note
    assert Order.objects.get(pk=refund.order.pk).status == Order.Status.PAID
