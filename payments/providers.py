"""Payment providers: how the shop talks to a gateway. One class per gateway, chosen by PAYMENT_PROVIDER.

A provider creates a payment at the gateway (and gets the URL where the customer pays), refunds part of
it, verifies and parses the gateway's notifications, and queries a payment's state when notifications
stop coming.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.urls import reverse

from config import inputs, json_input
from orders import registry
from payments import signing
from payments.sandbox import gateway as sandbox

if TYPE_CHECKING:
    from orders.models import Order
    from payments.models import Payment, Refund

MAX_REFERENCE_LENGTH = 64  # Payment.reference


class InvalidNotification(Exception):
    """A notification that must not be applied; `status` is the HTTP answer for the gateway."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ProviderError(Exception):
    """The gateway refused or could not be reached."""


class ProviderUnavailable(Exception):
    """Network error, timeout, 5xx, SYSTEM_ERROR, FREQUENCY_LIMITED, NOT_ENOUGH balance…: nothing is known to have
    happened at the rail; ask again later with the same reference / refund number."""


@dataclass(frozen=True)
class Checkout:
    """How the shopper pays an attempt: exactly one of the two is set."""

    redirect_url: str = ""  # sandbox page, Alipay page/wap pay URL, WeChat H5 h5_url
    qr_text: str = ""  # WeChat Native code_url: the core draws it as SVG with segno


@dataclass(frozen=True)
class Notification:
    event_id: str
    type: str
    reference: str
    amount: Decimal
    currency: str
    transaction_id: str = ""
    refund_reference: str = ""
    payload: dict[str, Any] | None = None


class GatewayState:
    PAID = "paid"
    OPEN = "open"
    DECLINED = "declined"
    CLOSED = "closed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AttemptState:
    status: str  # a GatewayState
    transaction_id: str = ""
    amount: Decimal | None = None  # what the rail says was paid, when PAID


@dataclass(frozen=True)
class RefundAnswer:
    provider_reference: str  # the rail's refund id ("" if none given)
    # True only when the rail's signed answer says the money moved (Alipay fund_change=Y / query says
    # REFUND_SUCCESS; WeChat status SUCCESS); otherwise the refund stays pending until its notification or a
    # query says so.
    succeeded: bool


@dataclass(frozen=True)
class StatementLine:
    """One line of the rail's daily bill."""

    reference: str  # our attempt reference (out_trade_no)
    transaction_id: str
    kind: str  # "payment" | "refund"
    amount: Decimal  # payment: amount paid; refund: amount refunded
    status: str  # "succeeded" | "refunded" | "closed" | … as the rail says, lower case
    refund_reference: str = ""  # our refund number for refund lines


class PaymentProvider:
    name = ""
    event_types = ("payment.succeeded", "payment.failed", "refund.succeeded")

    def create(self, payment: Payment, orders: list[Order]) -> str:
        """Register the payment with the gateway and return the URL where the customer pays."""
        raise NotImplementedError

    def refund(self, refund: Refund) -> str:
        """Ask the gateway to refund, with `refund.reference` as our refund number (asking twice with it refunds
        once); returns the gateway's own refund reference. Money moves on its notification, which names the
        refund by our number."""
        raise NotImplementedError

    def query(self, payment: Payment) -> str:
        """The gateway's view of a payment, one of GatewayState."""
        raise NotImplementedError

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        raise NotImplementedError


class SandboxProvider(PaymentProvider):
    name = "sandbox"

    def create(self, payment: Payment, orders: list[Order]) -> str:
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
        pay_url: str = settings.SITE_URL + reverse("sandbox:pay", args=[charge.reference])
        return pay_url

    def refund(self, refund: Refund) -> str:
        try:
            return sandbox.refund_create(
                merchant_reference=refund.payment.reference,
                merchant_refund_reference=refund.reference,
                amount=refund.amount,
            ).reference
        except (sandbox.GatewayRefused, sandbox.SandboxCharge.DoesNotExist) as refused:
            raise ProviderError(str(refused)) from None

    def query(self, payment: Payment) -> str:
        state = sandbox.charge_status(merchant_reference=payment.reference)
        if state is None:
            return GatewayState.UNKNOWN
        return {"paid": GatewayState.PAID, "open": GatewayState.OPEN, "declined": GatewayState.DECLINED}[
            state["status"]
        ]

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        try:
            signing.verify(settings.SANDBOX_WEBHOOK_SECRET, headers.get(signing.SIGNATURE_HEADER), body)
        except signing.BadSignature as bad:
            raise InvalidNotification(f"signature rejected: {bad}") from None
        try:
            payload = json_input.loads(body)
        except json_input.JSONRefused as refused:
            if refused.code == "too_deep":
                raise InvalidNotification(str(refused)) from None
            raise InvalidNotification("the body is not JSON") from None
        return _notification_from(payload, self.event_types)


def _notification_from(payload: object, event_types: tuple[str, ...]) -> Notification:
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
    # The whole payload is stored with the event: no text in it may be what the database refuses.
    bad_text = inputs.first_bad_text(payload)
    if bad_text:
        raise InvalidNotification(f"{bad_text[0]}: {bad_text[1]}")
    if len(data["reference"]) > MAX_REFERENCE_LENGTH:
        raise InvalidNotification(f"data.reference is longer than {MAX_REFERENCE_LENGTH} characters")
    if payload["type"] not in event_types:
        raise InvalidNotification(f"unknown event type {inputs.shown(payload['type'])!r}")
    try:
        amount = inputs.decimal_from_text(data["amount"])
    except inputs.InputRefused:
        raise InvalidNotification("data.amount is not a decimal") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise InvalidNotification("data.amount must be a positive amount with at most two decimals")
    refund_reference = data.get("refund_reference", "")
    if payload["type"] == "refund.succeeded" and (not isinstance(refund_reference, str) or not refund_reference):
        raise InvalidNotification("data.refund_reference must name the refund")
    if not isinstance(refund_reference, str):
        raise InvalidNotification("data.refund_reference must be a string")
    return Notification(
        event_id=payload["id"][:100],
        type=payload["type"],
        reference=data["reference"],
        amount=amount,
        currency=data["currency"],
        refund_reference=refund_reference or "",
        payload=payload,
    )


_PROVIDERS: dict[str, PaymentProvider] = {provider.name: provider for provider in (SandboxProvider(),)}


def register(provider: PaymentProvider) -> None:
    """A rail registers its provider when its module is imported (payments.rails.*)."""
    _PROVIDERS[provider.name] = provider


def get_provider(name: str | None = None) -> PaymentProvider:
    return _PROVIDERS[name or settings.PAYMENT_PROVIDER]
