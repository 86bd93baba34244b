"""Paid after it could no longer be honoured (SPEC 7.8): the customer paid at the gateway after the shop
cancelled or expired the payment. What the gateway captured goes back automatically, once, and staff are told;
the payment, its batch and its orders stay closed."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders import services as order_services
from orders.invariants import invariants_check
from orders.models import Batch, Order
from payments import messages, services
from payments.models import GatewayEvent, Payment, PaymentAttempt, Refund, RefundRequest
from payments.sandbox import gateway
from payments.sandbox.models import SandboxCharge, SandboxNotification, SandboxRefund
from payments.tasks import expire_unpaid_payments
from tests.factories import UserFactory
from tests.orders.flows import refunds_requested
from tests.payments.conftest import gateway_event
from tests.payments.sandbox import charge_reference, deliver


def close(batch, how: str) -> None:
    if how == "expired":
        Payment.objects.filter(batch=batch).update(expires_at=timezone.now() - timedelta(minutes=1))
        assert expire_unpaid_payments() == {str(batch.payment.pk): "expired"}
    else:
        order_services.batch_cancel(batch_id=batch.pk, owner=batch.owner)


@pytest.fixture
def paid_too_late(placed_batch):
    """A batch whose customer opened the gateway's page, then the shop closed the payment, then they paid."""

    def build(how: str):
        batch = placed_batch()
        reference = charge_reference(batch.payment)  # the gateway's page is open
        close(batch, how)
        gateway.charge_decide(charge_reference=reference, pay=True)
        assert SandboxCharge.objects.get(reference=reference).status == SandboxCharge.Status.PAID
        return batch

    return build


def sandbox_refunds(batch) -> list[Decimal]:
    """What the sandbox refunded on the charges of the batch's attempts."""
    references = PaymentAttempt.objects.filter(payment__batch=batch).values("reference")
    return list(
        SandboxRefund.objects.filter(charge__merchant_reference__in=references).values_list("amount", flat=True)
    )


@pytest.mark.parametrize("how", ["expired", "cancelled"])
def test_a_success_for_a_closed_payment_refunds_what_was_captured_exactly_once(
    paid_too_late, client, post_webhook, committed, how
):
    batch = paid_too_late(how)
    payment = batch.payment

    # when: the gateway's success notification arrives
    with committed():
        response = deliver(client, "payment.succeeded")
    refunds_requested(batch)  # what the worker's task does with the request queued

    # then: the whole amount is refunded at the gateway, the payment stays closed and is flagged
    assert response.json()["detail"] == f"not applied: payment was {how}; refunding 60.00"
    refund = Refund.objects.get(payment=payment)
    assert (refund.kind, refund.order, refund.amount, refund.status) == (
        Refund.Kind.UNHONOURED,
        None,
        Decimal("60.00"),
        Refund.Status.PENDING,
    )
    assert refund.provider_reference  # asked, by the task
    assert sandbox_refunds(batch) == [Decimal("60.00")]
    payment.refresh_from_db()
    assert payment.status == how and payment.needs_attention
    assert payment.attention_note == str(messages.PAID_TOO_LATE).format(status=payment.get_status_display())
    assert GatewayEvent.objects.get(payment=payment).needs_attention

    # when: the same notification is delivered again, and the gateway sends a second, distinct success
    with committed() as callbacks:
        again = deliver(client, "payment.succeeded")
        second = post_webhook(gateway_event(payment))

    # then: nothing more is refunded; the second event is flagged too
    assert again.json()["detail"].startswith("duplicate")
    assert second.json()["detail"] == f"not applied: payment was {how}; its refund is already under way"
    assert callbacks == []
    assert Refund.objects.filter(payment=payment).count() == 1
    assert sandbox_refunds(batch) == [Decimal("60.00")]
    assert GatewayEvent.objects.filter(payment=payment, needs_attention=True).count() == 2

    # when: the gateway confirms the refund
    confirmed = deliver(client, "refund.succeeded")

    # then: the money is back, as the attempt counts it; the payment, its batch and its orders stay closed
    # (nothing of the orders' money was refunded); SPEC 7.5 holds
    assert confirmed.json()["detail"] == f"refunded 60.00 captured after the payment was {how}"
    payment.refresh_from_db()
    assert payment.status == how and payment.refunded_amount == Decimal("0.00")
    assert PaymentAttempt.objects.get(payment=payment).refunded_amount == payment.amount == Decimal("60.00")
    assert Refund.objects.get(payment=payment).status == Refund.Status.SUCCEEDED
    assert Batch.objects.get(pk=batch.pk).status == how
    assert set(Order.objects.filter(batch=batch).values_list("status", flat=True)) == {how}
    report = invariants_check()
    assert report.ok, report.summary()


def test_a_refund_the_gateway_refuses_leaves_the_payment_flagged_and_the_notification_answered(
    placed_batch, post_webhook, committed
):
    # given: a success the sandbox never captured (its charge was never paid), for an expired payment
    batch = placed_batch()
    charge_reference(batch.payment)
    close(batch, "expired")

    with committed():
        response = post_webhook(gateway_event(batch.payment))
    refunds_requested(batch)  # what the worker's task does with the request queued

    assert response.status_code == 200
    refund = Refund.objects.get(payment=batch.payment)
    assert refund.status == Refund.Status.FAILED
    assert refund.status_changes.get().note.startswith("The payment gateway refused the refund")
    assert Payment.objects.get(pk=batch.payment.pk).needs_attention
    assert sandbox_refunds(batch) == []
    # the checker says the money (as the notification claims it) is still to be returned
    attempt = PaymentAttempt.objects.get(payment=batch.payment)
    assert invariants_check().found() == {"unhonoured_capture_not_refunded": [str(attempt.pk)]}


def test_a_refund_whose_request_was_lost_is_requested_by_the_sweep(paid_too_late, client):
    batch = paid_too_late("cancelled")
    deliver(client, "payment.succeeded")  # its task is lost (no worker here): the rail is never asked
    refund = Refund.objects.get(payment=batch.payment)
    assert refund.provider_reference == "" and sandbox_refunds(batch) == []

    RefundRequest.objects.filter(refunds=refund).update(created_at=timezone.now() - services.REFUND_REQUEST_RETRY_AFTER)
    assert services.refunds_request_unanswered() == 1

    assert sandbox_refunds(batch) == [Decimal("60.00")]
    assert SandboxNotification.objects.filter(type="refund.succeeded").count() == 1


def test_a_success_for_a_paid_payment_refunds_nothing(placed_batch, post_webhook):
    batch = placed_batch()
    post_webhook(gateway_event(batch.payment))

    response = post_webhook(gateway_event(batch.payment))

    assert response.json()["detail"] == "payment already succeeded"
    assert not Refund.objects.exists()


def test_the_refund_shows_in_the_payment_api_and_the_admin(paid_too_late, client, committed):
    batch = paid_too_late("expired")
    with committed():
        deliver(client, "payment.succeeded")
    refund = Refund.objects.get()

    client.force_login(batch.owner)
    body = client.get(f"/api/v1/payments/{batch.payment.pk}/").json()
    assert body["refunds"] == [
        {
            "id": refund.pk,
            "reference": refund.reference,
            "kind": "unhonoured",
            "order": None,
            "amount": "60.00",
            "status": "pending",
            "reason": "Paid after the payment was expired: everything captured is returned.",
            "refund_number": refund.request.reference,  # a request of its own
            "created_at": body["refunds"][0]["created_at"],
        }
    ]

    client.force_login(UserFactory(staff=True, is_superuser=True))
    listing = client.get("/admin/payments/refund/?kind__exact=unhonoured").content.decode()
    assert refund.reference in listing and "paid after it could no longer be honoured" in listing
    assert refund.reference in client.get(f"/admin/payments/payment/{batch.payment.pk}/change/").content.decode()


def test_paid_on_the_gateway_page_after_cancelling_is_refunded_through_the_real_worker(
    live_server, worker, api_client, client, wait_for_batch, wait_until, monkeypatch
):
    """Real worker, Redis, PostgreSQL and HTTP: the gateway's notifications travel as they do in production.

    Cancelling closes the attempt at the gateway too, after commit; here the customer pays before that close
    reaches it (the broker holds every message for a moment: the outbox publishes them all afterwards, the
    close first), as a rail's close can cross a payment already under way."""
    from orders import outbox
    from tests.orders.factories import ProductFactory
    from tests.payments.sandbox import gateway_path

    ProductFactory(sku="CARD", unit_price=Decimal("4.35"), stock=3)
    response = api_client.post("/api/v1/batches/", {"rows": [{"kind": "goods", "sku": "CARD"}]}, format="json")
    batch = wait_for_batch(response.json()["id"])
    payment = Payment.objects.get(batch=batch)
    page = gateway_path(payment)  # the customer opens the gateway's page...
    with monkeypatch.context() as broker_slow:
        broker_slow.setattr(outbox, "_broker_down_until", time.monotonic() + 60)
        assert api_client.post(f"/api/v1/batches/{batch.pk}/cancel/").status_code == 200  # ...cancels in a tab
        client.post(page, {"decision": "pay"})  # ...and pays on the page still open
    time.sleep(outbox.SWEEP_GRACE.total_seconds())
    assert outbox.publish_due() == 2  # the attempt's close, then the gateway's success notification

    refund = wait_until(
        lambda: Refund.objects.filter(payment=payment, status=Refund.Status.SUCCEEDED).first(),
        timeout=30,
        what="the late payment to be refunded",
    )
    assert (refund.kind, refund.amount) == (Refund.Kind.UNHONOURED, Decimal("4.35"))
    assert sandbox_refunds(batch) == [Decimal("4.35")]
    payment.refresh_from_db()
    assert (payment.status, payment.needs_attention) == ("cancelled", True)
    assert PaymentAttempt.objects.get(payment=payment).refunded_amount == Decimal("4.35")
    assert Order.objects.get(batch=batch).status == Order.Status.CANCELLED
    report = invariants_check()
    assert report.ok, report.summary()
