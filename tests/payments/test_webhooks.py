"""The webhook endpoint (SPEC section 5): verified, matched against the payment, applied once."""

import json
import time
from decimal import Decimal

import pytest

from orders.models import Batch, Order, OrderStatusChange, Product
from payments.models import GatewayEvent, Payment, PaymentAttempt
from tests.payments.conftest import WEBHOOK_URL, gateway_event


@pytest.fixture
def batch(placed_batch):
    return placed_batch()


def assert_unchanged(batch):
    batch.refresh_from_db()
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    assert batch.payment.status == Payment.Status.PENDING
    assert set(batch.orders.values_list("status", flat=True)) == {Order.Status.AWAITING_PAYMENT}
    assert not GatewayEvent.objects.exists()


def test_a_signed_success_pays_the_payment_its_orders_and_its_batch_once(batch, post_webhook):
    event = gateway_event(batch.payment)

    response = post_webhook(event)

    assert response.status_code == 200
    batch.refresh_from_db()
    assert batch.status == Batch.Status.PAID
    assert batch.payment.status == Payment.Status.SUCCEEDED
    assert set(batch.orders.values_list("status", flat=True)) == {Order.Status.PAID}
    audit_rows = OrderStatusChange.objects.count()

    again = post_webhook(event)

    assert again.status_code == 200
    assert again.json()["detail"].startswith("duplicate")
    assert OrderStatusChange.objects.count() == audit_rows
    assert GatewayEvent.objects.count() == 1


@pytest.mark.parametrize(
    "tamper, status",
    [
        (lambda p, e: {"signature": "t=1,v1=deadbeef"}, 400),
        (lambda p, e: {"signature": ""}, 400),
        (lambda p, e: {"secret": "not-the-secret"}, 400),
        (lambda p, e: {"timestamp": int(time.time()) - 301}, 400),
        (lambda p, e: {"timestamp": int(time.time()) + 301}, 400),
    ],
    ids=["forged", "missing", "wrong-secret", "stale", "future"],
)
def test_a_bad_signature_is_400_and_changes_nothing(batch, post_webhook, tamper, status):
    response = post_webhook(gateway_event(batch.payment), **tamper(batch.payment, None))

    assert response.status_code == status
    assert "signature rejected" in response.json()["detail"]
    assert_unchanged(batch)


@pytest.mark.parametrize(
    "event_kwargs, message",
    [
        ({"amount": Decimal("59.99")}, "amount 59.99 does not match the attempt's 60.00"),
        ({"amount": Decimal("60.01")}, "amount 60.01 does not match the attempt's 60.00"),
        ({"currency": "USD"}, "currency USD does not match the attempt's CNY"),
    ],
)
def test_a_notification_that_does_not_match_the_payment_is_400_and_not_applied(
    batch, post_webhook, event_kwargs, message
):
    response = post_webhook(gateway_event(batch.payment, **event_kwargs))

    assert response.status_code == 400
    assert response.json()["detail"] == message
    assert_unchanged(batch)


@pytest.mark.parametrize("reference", ["pa_nobody", "payment"], ids=["unknown", "the-payment-not-an-attempt"])
def test_an_unknown_reference_is_404(batch, post_webhook, reference):
    event = gateway_event(batch.payment)
    # A notification names an attempt: the payment's own reference names none.
    event["data"]["reference"] = batch.payment.reference if reference == "payment" else reference

    response = post_webhook(event)

    assert response.status_code == 404
    assert response.json()["detail"] == f"no payment attempt has the reference {event['data']['reference']!r}"
    assert_unchanged(batch)


def test_a_notification_for_another_rails_attempt_is_404(batch, post_webhook):
    event = gateway_event(batch.payment)
    PaymentAttempt.objects.filter(reference=event["data"]["reference"]).update(provider="wechat")

    response = post_webhook(event)  # signed with the sandbox's secret, for an attempt on WeChat Pay

    assert response.status_code == 404
    assert_unchanged(batch)


def test_an_unknown_rail_is_404_in_json(client, db):
    response = client.post("/payments/webhooks/nowhere/", b"{}", content_type="application/json")

    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "the body is not JSON"),
        (b"\xff\xfe", "the body is not JSON"),
        (json.dumps([1, 2]).encode(), "the body must be an object with id, type and data"),
        (
            json.dumps({"id": "e1", "type": "payment.succeeded"}).encode(),
            "the body must be an object with id, type and data",
        ),
        ({"type": "payment.succeeded", "data": {}}, "id must be a non-empty string"),
        (
            {"id": "e1", "type": "payment.refunded", "data": {"reference": "r", "amount": "1", "currency": "CNY"}},
            "unknown event type 'payment.refunded'",
        ),
        (
            {"id": "e1", "type": "payment.succeeded", "data": {"reference": "r", "amount": 60, "currency": "CNY"}},
            "data.amount must be a non-empty string",
        ),
        (
            {"id": "e1", "type": "payment.succeeded", "data": {"reference": "r", "amount": "sixty", "currency": "CNY"}},
            "data.amount is not a decimal",
        ),
        (
            {
                "id": "e1",
                "type": "payment.succeeded",
                "data": {"reference": "r", "amount": "-60.00", "currency": "CNY"},
            },
            "data.amount must be a positive amount with at most two decimals",
        ),
        (
            {"id": "e1", "type": "payment.succeeded", "data": {"reference": "r", "amount": "NaN", "currency": "CNY"}},
            "data.amount is not a decimal",
        ),
    ],
)
def test_a_malformed_body_is_400_naming_the_problem(batch, post_webhook, body, message):
    response = post_webhook(body)

    assert response.status_code == 400
    assert response.json()["detail"] == message
    assert_unchanged(batch)


def test_the_webhook_only_accepts_post(client, db):
    assert client.get(WEBHOOK_URL).status_code == 405


def test_a_declined_attempt_leaves_the_payment_pending_and_the_orders_held(batch, post_webhook):
    event = gateway_event(batch.payment, "payment.failed")

    response = post_webhook(event)

    assert response.status_code == 200
    assert response.json()["detail"] == "attempt declined; payment pending"
    batch.refresh_from_db()
    assert PaymentAttempt.objects.get(reference=event["data"]["reference"]).status == PaymentAttempt.Status.DECLINED
    assert batch.payment.status == Payment.Status.PENDING
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    assert set(batch.orders.values_list("status", flat=True)) == {Order.Status.AWAITING_PAYMENT}
    assert set(Product.objects.values_list("stock", flat=True)) == {4}  # still held for the next try
