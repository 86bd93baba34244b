import importlib
import json
import secrets
from contextlib import contextmanager

import pytest
from django.conf import settings

from payments import signing
from tests.payments.fakes.alipay import alipay_gateway, fake_alipay  # noqa: F401 - fixtures for every payments test
from tests.payments.sandbox import WEBHOOK_URL, current_attempt

# The sandbox queues its notifications by task name (orders.tasking), which Celery knows outside a worker only
# once the task's module is imported; without this, these tests passed only when another module imported it.
importlib.import_module("payments.sandbox.tasks")


def gateway_event(payment, event_type="payment.succeeded", *, amount=None, currency=None, **data) -> dict:
    """A sandbox notification about the payment's latest attempt (one is started when it has none)."""
    return {
        "id": f"evt_test_{secrets.token_hex(8)}",
        "type": event_type,
        "data": {
            "reference": current_attempt(payment).reference,
            "amount": str(payment.amount if amount is None else amount),
            "currency": currency or payment.currency,
            **data,
        },
    }


@pytest.fixture
def post_webhook(client):
    """POST a body to the webhook as the gateway would, signed unless a header is given."""

    def post(body, *, timestamp=None, signature=None, secret=None):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if signature is None:
            signature = signing.sign(secret or settings.SANDBOX_WEBHOOK_SECRET, raw, timestamp=timestamp)
        return client.post(WEBHOOK_URL, raw, content_type="application/json", HTTP_SANDBOX_SIGNATURE=signature)

    return post


@pytest.fixture
def test_rail(settings):
    """The tests' own QR rail (tests/testrail), configured, so offered instead of the sandbox."""
    from payments.providers import get_provider
    from tests.testrail.provider import NAME, QrTestProvider

    settings.TEST_RAIL_ENABLED = True
    rail = get_provider(NAME)
    assert isinstance(rail, QrTestProvider)
    rail.reset()
    yield rail
    rail.reset()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what a block left for after its commit, as the commit would in production (the test's transaction
    never commits). Only the block's own: work those callbacks leave in turn (the sandbox's notifications to
    a worker) stays unsent, and the test delivers what it needs itself."""

    @contextmanager
    def block():
        with django_capture_on_commit_callbacks() as callbacks:
            yield callbacks
        for callback in callbacks:
            callback()

    return block
