import importlib
import json
import secrets

import pytest
from django.conf import settings

from payments import signing
from tests.payments.fakes.alipay import alipay_gateway, fake_alipay  # noqa: F401 - fixtures for every payments test
from tests.payments.sandbox import WEBHOOK_URL

# The sandbox queues its notifications by task name (orders.tasking), which Celery knows outside a worker only
# once the task's module is imported; without this, these tests passed only when another module imported it.
importlib.import_module("payments.sandbox.tasks")


def gateway_event(payment, event_type="payment.succeeded", *, amount=None, currency=None, **data) -> dict:
    return {
        "id": f"evt_test_{secrets.token_hex(8)}",
        "type": event_type,
        "data": {
            "reference": payment.reference,
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
