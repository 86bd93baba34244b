"""Payment providers: how the shop talks to a payment rail (the sandbox, WeChat Pay, Alipay).

The contract between the payments core and each rail (issue #15): a provider starts an attempt and says how
the shopper pays it (a page to go to, or a QR code), asks the rail about it, closes it, refunds part of it,
verifies and parses the rail's notifications and answers them as the rail documents, and reads the rail's
daily statement. Amounts are Decimal yuan; a rail converts them. Nothing secret is ever logged, put in a
notification's payload or shown.

Rails register themselves from their own module (`register(provider)`, imported by PaymentsConfig.ready());
the sandbox is registered here and is always configured.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from config import inputs, json_input
from config.errors import error_body
from orders import registry
from orders.models import Order
from payments import signing
from payments.sandbox import gateway as sandbox

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise

    from payments.models import PaymentAttempt, RefundRequest

MAX_REFERENCE_LENGTH = 64  # PaymentAttempt.reference, RefundRequest.reference
MAX_TRANSACTION_ID_LENGTH = 64  # PaymentAttempt.transaction_id
# The rails' statements and business days are China's.
RAIL_TIME_ZONE = ZoneInfo("Asia/Shanghai")


class InvalidNotification(Exception):
    """A notification that must not be applied; `status` is the HTTP answer for the gateway (400 forged or
    malformed, 404 unknown)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ProviderError(Exception):
    """The rail refused for good (the refund fails, the attempt fails)."""


class ProviderUnavailable(Exception):
    """Nothing is known to have happened (network error, timeout, 5xx, the rail busy or short of balance):
    ask again later with the same reference or refund number."""


class AttemptLike(Protocol):
    """What a rail reads of a payment attempt (payments.models.PaymentAttempt): our reference is its
    out_trade_no."""

    @property
    def reference(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...
    @property
    def expires_at(self) -> datetime | None: ...


class RefundLike(Protocol):
    """What a rail reads of a refund request (payments.models.RefundRequest): our refund number is its
    out_refund_no / out_request_no."""

    @property
    def reference(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def reason(self) -> str: ...
    @property
    def attempt(self) -> AttemptLike: ...


@dataclass(frozen=True)
class Checkout:
    """How the shopper pays an attempt: exactly one of the two is set."""

    redirect_url: str = ""  # a page to send the shopper to
    qr_text: str = ""  # the text of a QR code to scan (drawn by the core)


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
    # True only when the rail's signed answer says the money moved; otherwise the refund stays pending
    # until its notification or a query says so.
    succeeded: bool


@dataclass(frozen=True)
class Notification:
    event_id: str  # the rail's notification id
    type: str  # "payment.succeeded" | "payment.failed" | "refund.succeeded" | "refund.failed"
    reference: str  # the attempt's reference
    amount: Decimal  # payment: total paid; refund: this refund's amount
    currency: str
    transaction_id: str = ""
    refund_reference: str = ""  # our refund number, for refund.* types
    payload: dict[str, Any] | None = None  # the verified (decrypted) content, JSON-safe, no secrets


@dataclass(frozen=True)
class StatementLine:
    """One line of a rail's daily bill."""

    reference: str  # our attempt reference
    transaction_id: str
    kind: str  # "payment" | "refund"
    amount: Decimal
    status: str  # "succeeded" | "refunded" | "closed" | ... as the rail says, lower case
    refund_reference: str = ""


class PaymentProvider:
    name: str = ""
    label: _StrOrPromise = ""
    methods: dict[str, _StrOrPromise] = {}  # noqa: RUF012 - each rail sets its own
    mobile_methods: frozenset[str] = frozenset()  # the methods meant for phone browsers
    max_refunds_per_payment: int | None = None

    def is_configured(self) -> bool:
        """Every setting the rail needs is present."""
        raise NotImplementedError

    def config_problems(self) -> list[str]:
        """What is missing or malformed, one line each, never the secret itself (for `manage.py preflight`)."""
        raise NotImplementedError

    def start(
        self, attempt: PaymentAttempt, *, description: str, client_ip: str, return_url: str, notify_url: str
    ) -> Checkout:
        raise NotImplementedError

    def query(self, attempt: PaymentAttempt) -> AttemptState:
        raise NotImplementedError

    def close(self, attempt: PaymentAttempt) -> None:
        """The rail will not take money for the attempt any more. Closing one it never saw, or closed
        already, is not an error."""
        raise NotImplementedError

    def refund(self, refund: RefundRequest, *, notify_url: str) -> RefundAnswer:
        """Refund `refund.amount` of `refund.attempt`, with `refund.reference` as our refund number (asking
        again with it refunds once). One request may carry the refunds of many orders (its amount is theirs)."""
        raise NotImplementedError

    def query_refund(self, refund: RefundRequest) -> str:
        """ "succeeded" | "pending" | "failed" | "unknown"."""
        raise NotImplementedError

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify and parse a notification; raise InvalidNotification(message, 400) when it is not genuine."""
        raise NotImplementedError

    def answer(self, *, applied: bool, message: str = "") -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) as the rail documents it; `applied` is also True for a
        duplicate that was applied before."""
        raise NotImplementedError

    def answer_refusal(self, refused: InvalidNotification) -> tuple[int, str, bytes]:
        """The answer to a notification that was refused. Rails answer every refusal alike (`answer`); the
        sandbox tells a forged one (400) from an unknown reference (404), as its protocol says."""
        return self.answer(applied=False, message=str(refused))

    def statement(self, day: date) -> list[StatementLine]:
        """The rail's bill for that day (Asia/Shanghai)."""
        raise NotImplementedError

    def offered_methods(self, *, mobile: bool) -> list[str]:
        """The methods to offer a desktop or a phone browser: on a phone the mobile ones, elsewhere the
        others; a rail that has only one kind offers it to both."""
        chosen = [method for method in self.methods if (method in self.mobile_methods) == mobile]
        return chosen or list(self.methods)


class SandboxProvider(PaymentProvider):
    """The built-in sandbox gateway (payments/sandbox): a hosted page with Pay and Decline, signed
    notifications sent by a task. Its charge's merchant reference is the attempt's reference."""

    name = "sandbox"
    label: _StrOrPromise = _("Sandbox gateway")
    methods: dict[str, _StrOrPromise] = {"page": _("Sandbox gateway (no real money)")}  # noqa: RUF012
    event_types = ("payment.succeeded", "payment.failed", "refund.succeeded", "refund.failed")

    def is_configured(self) -> bool:
        return True

    def config_problems(self) -> list[str]:
        return [] if settings.SANDBOX_WEBHOOK_SECRET else ["SANDBOX_WEBHOOK_SECRET: missing"]

    def start(
        self, attempt: PaymentAttempt, *, description: str, client_ip: str, return_url: str, notify_url: str
    ) -> Checkout:
        orders = Order.objects.filter(allocation__payment=attempt.payment_id).only("pk", "number", "kind", "amount")
        items = [
            {
                "name": f"{order.number} · {registry.label(order.kind)}: {registry.describe(order)}",
                "amount": f"{order.amount:.2f}",
            }
            for order in orders.order_by("row_index")
        ]
        charge = sandbox.charge_create(
            merchant_reference=attempt.reference,
            amount=attempt.amount,
            currency=attempt.currency,
            description=description,
            items=items,
            notify_url=notify_url,
            return_url=return_url,
        )
        return Checkout(redirect_url=settings.SITE_URL + reverse("sandbox:pay", args=[charge.reference]))

    def query(self, attempt: PaymentAttempt) -> AttemptState:
        state = sandbox.charge_status(merchant_reference=attempt.reference)
        if state is None:
            return AttemptState(GatewayState.UNKNOWN)
        status = {
            "paid": GatewayState.PAID,
            "open": GatewayState.OPEN,
            "declined": GatewayState.DECLINED,
            "closed": GatewayState.CLOSED,
        }[state["status"]]
        paid = status == GatewayState.PAID
        return AttemptState(status, transaction_id=state["reference"], amount=state["amount"] if paid else None)

    def close(self, attempt: PaymentAttempt) -> None:
        sandbox.charge_close(merchant_reference=attempt.reference)

    def refund(self, refund: RefundRequest, *, notify_url: str) -> RefundAnswer:
        try:
            sandbox_refund = sandbox.refund_create(
                merchant_reference=refund.attempt.reference,
                merchant_refund_reference=refund.reference,
                amount=refund.amount,
            )
        except (sandbox.GatewayRefused, sandbox.SandboxCharge.DoesNotExist) as refused:
            raise ProviderError(str(refused)) from None
        # The sandbox confirms every refund by its notification, as SPEC section 5 describes.
        return RefundAnswer(provider_reference=sandbox_refund.reference, succeeded=False)

    def query_refund(self, refund: RefundRequest) -> str:
        return "succeeded" if sandbox.refund_exists(merchant_refund_reference=refund.reference) else "unknown"

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

    def answer(self, *, applied: bool, message: str = "") -> tuple[int, str, bytes]:
        if applied:
            return 200, "application/json", json.dumps({"detail": message}).encode()
        return self.answer_refusal(InvalidNotification(message))

    def answer_refusal(self, refused: InvalidNotification) -> tuple[int, str, bytes]:
        code = "invalid_notification" if refused.status == 400 else None
        body = error_body(refused.status, str(refused), code)
        return refused.status, "application/json", json.dumps(body).encode()

    def statement(self, day: date) -> list[StatementLine]:
        start = datetime.combine(day, time.min, tzinfo=RAIL_TIME_ZONE)
        end = datetime.combine(day, time.max, tzinfo=RAIL_TIME_ZONE)
        lines = [
            StatementLine(
                reference=charge.merchant_reference,
                transaction_id=charge.reference,
                kind="payment",
                amount=charge.amount,
                status="succeeded",
            )
            for charge in sandbox.SandboxCharge.objects.filter(
                status=sandbox.SandboxCharge.Status.PAID, decided_at__range=(start, end)
            ).order_by("pk")
        ]
        lines += [
            StatementLine(
                reference=refund.charge.merchant_reference,
                transaction_id=refund.charge.reference,
                kind="refund",
                amount=refund.amount,
                status="refunded",
                refund_reference=refund.merchant_reference or "",
            )
            for refund in sandbox.SandboxRefund.objects.filter(created_at__range=(start, end))
            .select_related("charge")
            .order_by("pk")
        ]
        return lines


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
    if payload["type"].startswith("refund.") and (not isinstance(refund_reference, str) or not refund_reference):
        raise InvalidNotification("data.refund_reference must name the refund")
    if not isinstance(refund_reference, str):
        raise InvalidNotification("data.refund_reference must be a string")
    transaction_id = data.get("transaction_id", "")
    if not isinstance(transaction_id, str) or len(transaction_id) > MAX_TRANSACTION_ID_LENGTH:
        raise InvalidNotification(f"data.transaction_id must be a string of at most {MAX_TRANSACTION_ID_LENGTH}")
    return Notification(
        event_id=payload["id"][:100],
        type=payload["type"],
        reference=data["reference"],
        amount=amount,
        currency=data["currency"],
        transaction_id=transaction_id,
        refund_reference=refund_reference or "",
        payload=payload,
    )


# --- The registry ------------------------------------------------------------------------------------------


class UnknownProvider(LookupError):
    pass


_PROVIDERS: dict[str, PaymentProvider] = {}


def register(provider: PaymentProvider) -> None:
    """Make a rail available under its name (a rail's module calls it when imported)."""
    existing = _PROVIDERS.get(provider.name)
    if existing is not None and type(existing) is not type(provider):
        raise ValueError(f"payment provider {provider.name!r} is already registered by {type(existing).__name__}")
    _PROVIDERS[provider.name] = provider


def get_provider(name: str) -> PaymentProvider:
    try:
        return _PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(f"no payment provider {name!r} is registered") from None


def provider_notify_url(name: str) -> str:
    """Where the rail sends its notifications: the one webhook, under the rail's name."""
    url: str = settings.SITE_URL + reverse("payments:webhook", args=[name])
    return url


def refund_limits() -> dict[str, int]:
    """Every registered rail that takes at most so many refund requests per payment, with its limit."""
    return {
        name: provider.max_refunds_per_payment
        for name, provider in _PROVIDERS.items()
        if provider.max_refunds_per_payment is not None
    }


def configured_providers() -> list[PaymentProvider]:
    """Every registered provider whose settings are all present (the sandbox always is), in registration order."""
    return [provider for provider in _PROVIDERS.values() if provider.is_configured()]


def offered_providers() -> list[PaymentProvider]:
    """The rails a shopper may pay with: every configured real rail, or the sandbox when none is (a site that
    takes real money must never offer a gateway where nothing is paid)."""
    configured = configured_providers()
    real = [provider for provider in configured if provider.name != SandboxProvider.name]
    return real or [provider for provider in configured if provider.name == SandboxProvider.name]


@dataclass(frozen=True)
class OfferedMethod:
    provider: str
    method: str
    label: str
    provider_label: str

    @property
    def key(self) -> str:
        """How the payment page's form names it."""
        return f"{self.provider}:{self.method}"


# What phone browsers say of themselves ("Mobile" in most, "Android" and "iPhone" in the rest, and WeChat's
# and Alipay's own in-app browsers).
_PHONE_USER_AGENT = re.compile(r"Mobi|Android|iPhone|iPod|MicroMessenger|AlipayClient|HarmonyOS", re.IGNORECASE)


def is_phone(user_agent: str) -> bool:
    return bool(_PHONE_USER_AGENT.search(user_agent or ""))


def offered_methods(*, mobile: bool) -> list[OfferedMethod]:
    return [
        OfferedMethod(
            provider=provider.name,
            method=method,
            label=str(provider.methods[method]),
            provider_label=str(provider.label),
        )
        for provider in offered_providers()
        for method in provider.offered_methods(mobile=mobile)
    ]


register(SandboxProvider())
