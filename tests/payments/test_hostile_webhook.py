"""The gateway webhook against the requests that used to answer 500 (issue 12), signed and unsigned: each is a
400 (or 413) with a JSON body in the one error shape, and nothing about the payment changes."""

import json
import time

import pytest
from django.conf import settings

from payments import signing
from tests.payments.conftest import WEBHOOK_URL, gateway_event
from tests.payments.test_webhooks import assert_unchanged


@pytest.fixture
def batch(placed_batch):
    return placed_batch()


def assert_refused(response, status=400) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"] and body["code"]
    return body


def signed(raw: bytes) -> str:
    return signing.sign(settings.SANDBOX_WEBHOOK_SECRET, raw)


@pytest.mark.parametrize(
    "header",
    [
        lambda now: f"t={now},v1=é",
        # What a real server hands Django for the UTF-8 bytes of "é": two Latin-1 characters.
        lambda now: f"t={now},v1=Ã©",
        lambda now: "t=" + "9" * 400 + ",v1=" + "0" * 64,
        lambda now: f"t={now},v1=" + "0" * 10_000,
        lambda now: f"t={now}.5,v1=" + "0" * 64,
        lambda now: f"t={now},t={now},v1=" + "0" * 64,
        lambda now: f"t=-{now},v1=" + "0" * 64,
        lambda now: f"t={now},v1=" + "é" * 64,
    ],
    ids=["non-ascii", "latin-1-decoded", "400-nines", "long", "fraction", "two-timestamps", "negative", "64-non-hex"],
)
def test_a_malformed_signature_header_is_a_400_before_any_comparison(batch, client, header):
    raw = json.dumps(gateway_event(batch.payment)).encode()

    response = client.post(
        WEBHOOK_URL, raw, content_type="application/json", HTTP_SANDBOX_SIGNATURE=header(int(time.time()))
    )

    assert "signature rejected" in assert_refused(response)["detail"]
    assert_unchanged(batch)


@pytest.mark.parametrize("amount", ["1e400", "1e999", "1E+19", "0.0000000000000000001", "9" * 5000, "Infinity"])
def test_a_signed_amount_that_is_not_a_bounded_decimal_is_a_400(batch, post_webhook, amount):
    response = post_webhook(gateway_event(batch.payment, amount=amount))

    assert assert_refused(response)["detail"] == "data.amount is not a decimal"
    assert_unchanged(batch)


@pytest.mark.parametrize(
    "tamper, path",
    [
        (lambda event: event.update(id="evt\u0000"), "id"),
        (lambda event: event.update(id="evt\ud800"), "id"),
        (lambda event: event["data"].update(reference="pay\u0000"), "data.reference"),
        (lambda event: event["data"].update(reference="pay\udfff"), "data.reference"),
        (lambda event: event["data"].update(note="\u0000"), "data.note"),
        (lambda event: event.update({"k\u0000": 1}), "k\\u0000"),
    ],
    ids=["nul-id", "surrogate-id", "nul-reference", "surrogate-reference", "nul-elsewhere", "nul-key"],
)
def test_a_signed_body_with_text_the_database_refuses_is_a_400_naming_where(batch, post_webhook, tamper, path):
    event = gateway_event(batch.payment)
    tamper(event)

    response = post_webhook(event)

    assert assert_refused(response)["detail"].startswith(f"{path}: ")
    assert_unchanged(batch)


@pytest.mark.parametrize("depth", [33, 1500])
@pytest.mark.parametrize("sign", [True, False], ids=["signed", "unsigned"])
def test_a_deeply_nested_body_is_a_400(batch, client, depth, sign):
    raw = b'{"id": "e", "data": ' + b"[" * depth + b"]" * depth + b"}"
    signature = signed(raw) if sign else "t=1,v1=" + "0" * 64

    response = client.post(WEBHOOK_URL, raw, content_type="application/json", HTTP_SANDBOX_SIGNATURE=signature)

    assert_refused(response)
    assert_unchanged(batch)


def test_a_signed_deeply_nested_body_says_why(batch, post_webhook):
    response = post_webhook(b'{"id": "e", "data": ' + b"[" * 1000 + b"]" * 1000 + b"}")

    assert assert_refused(response)["detail"] == "JSON nested deeper than 32 levels is refused."


def test_a_30_mb_body_is_a_413_in_json(batch, client):
    response = client.post(WEBHOOK_URL, b"x" * (30 * 1024 * 1024), content_type="application/json")

    assert assert_refused(response, 413)["code"] == "request_too_large"
    assert_unchanged(batch)


def test_a_get_is_a_405_in_json_with_allow(client, db):
    response = client.get(WEBHOOK_URL)

    assert assert_refused(response, 405)["code"] == "method_not_allowed"
    assert response["Allow"] == "POST"
