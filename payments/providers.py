"""Payment providers: how the shop talks to a gateway. One class per gateway, chosen by PAYMENT_PROVIDER.

A provider creates a payment at the gateway (and gets the URL where the customer pays), refunds part of
it, verifies and parses the gateway's notifications, and queries a payment's state when notifications
stop coming.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.urls import reverse

from orders import registry
from payments import signing
from payments.sandbox import gateway as sandbox


class InvalidNotification(Exception):
    """A notification that must not be applied; `status` is the HTTP answer for the gateway."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ProviderError(Exception):
    """The gateway refused or could not be reached."""


@dataclass(frozen=True)
class Notification:
    event_id: str
    type: str
    reference: str
    amount: Decimal
    currency: str
    refund_reference: str = ""
    payload: dict | None = None


class GatewayState:
    PAID = "paid"
    OPEN = "open"
    DECLINED = "declined"
    UNKNOWN = "unknown"


class PaymentProvider:
    name = ""
    event_types = ("payment.succeeded", "payment.failed", "refund.succeeded")

    def create(self, payment, orders) -> str:
        """Register the payment with the gateway and return the URL where the customer pays."""
        raise NotImplementedError

    def refund(self, refund) -> str:
        """Ask the gateway to refund, with `refund.reference` as our refund number (asking twice with it refunds
        once); returns the gateway's own refund reference. Money moves on its notification, which names the
        refund by our number."""
        raise NotImplementedError

    def query(self, payment) -> str:
        """The gateway's view of a payment, one of GatewayState."""
        raise NotImplementedError

    def parse_notification(self, headers, body: bytes) -> Notification:
        raise NotImplementedError


class SandboxProvider(PaymentProvider):
    name = "sandbox"

    def create(self, payment, orders) -> str:
        items = [
            {
                "name": f"{order.number} · {registry.label(order.kind)}: {registry.describe(order)}",
                "amount": f"{order.amount:.2f}",
            }
            for order in orders
        ]
        charge = sandbox.charge_create(
            merchant_reference=payment.reference,
            amount=payment.amount,
            currency=payment.currency,
            description=f"Batchpay: {len(items)} orders",
            items=items,
            notify_url=settings.SITE_URL + reverse("payments:sandbox-webhook"),
            return_url=settings.SITE_URL + reverse("payments:return", args=[payment.reference]),
        )
        return settings.SITE_URL + reverse("sandbox:pay", args=[charge.reference])

    def refund(self, refund) -> str:
        try:
            return sandbox.refund_create(
                merchant_reference=refund.payment.reference,
                merchant_refund_reference=refund.reference,
                amount=refund.amount,
            ).reference
        except (sandbox.GatewayRefused, sandbox.SandboxCharge.DoesNotExist) as refused:
            raise ProviderError(str(refused)) from None

    def query(self, payment) -> str:
        state = sandbox.charge_status(merchant_reference=payment.reference)
        if state is None:
            return GatewayState.UNKNOWN
        return {"paid": GatewayState.PAID, "open": GatewayState.OPEN, "declined": GatewayState.DECLINED}[
            state["status"]
        ]

    def parse_notification(self, headers, body: bytes) -> Notification:
        try:
            signing.verify(settings.SANDBOX_WEBHOOK_SECRET, headers.get(signing.SIGNATURE_HEADER), body)
        except signing.BadSignature as bad:
            raise InvalidNotification(f"signature rejected: {bad}") from None
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InvalidNotification("the body is not JSON") from None
        return _notification_from(payload, self.event_types)


def _notification_from(payload, event_types) -> Notification:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise InvalidNotification("the body must be an object with id, type and data")
    data = payload["data"]
    fields = {
        "id": payload.get("id"),
        "type": payload.get("type"),
        "data.reference": data.get("reference"),
        "data.amount": data.get("amount"),
        "data.currency": data.get("currency"),
    }
    for name, value in fields.items():
        if not isinstance(value, str) or not value:
            raise InvalidNotification(f"{name} must be a non-empty string")
    if payload["type"] not in event_types:
        raise InvalidNotification(f"unknown event type {payload['type']!r}")
    try:
        amount = Decimal(data["amount"])
    except InvalidOperation:
        raise InvalidNotification("data.amount is not a decimal") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise InvalidNotification("data.amount must be a positive amount with at most two decimals")
    refund_reference = data.get("refund_reference", "")
    if payload["type"] == "refund.succeeded" and (not isinstance(refund_reference, str) or not refund_reference):
        raise InvalidNotification("data.refund_reference must name the refund")
    return Notification(
        event_id=payload["id"][:100],
        type=payload["type"],
        reference=data["reference"],
        amount=amount,
        currency=data["currency"],
        refund_reference=refund_reference or "",
        payload=payload,
    )


_PROVIDERS = {provider.name: provider for provider in (SandboxProvider(),)}


def get_provider(name: str | None = None) -> PaymentProvider:
    return _PROVIDERS[name or settings.PAYMENT_PROVIDER]
