import json
import secrets
from decimal import Decimal

import pytest
from django.conf import settings

from payments import signing
from tests.orders.factories import ProductFactory

WEBHOOK_URL = "/payments/webhooks/sandbox/"


@pytest.fixture
def placed_batch(place_batch):
    """A batch placed synchronously through the services (no worker): its payment is pending."""

    def place(prices=("10.00", "20.00", "30.00"), owner=None):
        rows = []
        for index, price in enumerate(prices):
            ProductFactory(sku=f"ITEM-{index}", unit_price=Decimal(price), stock=5)
            rows.append({"kind": "goods", "sku": f"ITEM-{index}"})
        return place_batch(rows, owner=owner)

    return place


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
