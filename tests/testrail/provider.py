"""A payment rail only tests know, whose desktop checkout is a QR code and whose phone checkout is a page.

Underneath it is the sandbox gateway (its charges, its signed notifications, its refunds), reached under
its own name: its notifications arrive at /payments/webhooks/qrtest/. It is offered only where a test turns
it on (`settings.TEST_RAIL_ENABLED`), so every other test sees the sandbox alone. A test makes it misbehave
by setting `start_error`, `refund_error` or `refund_moves_money` on the registered instance, and gives it
a limit of refund requests per payment with `max_refunds_per_payment`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from payments.providers import Checkout, RefundAnswer, SandboxProvider

if TYPE_CHECKING:
    from payments.models import PaymentAttempt, RefundRequest

NAME = "qrtest"


class QrTestProvider(SandboxProvider):
    name = NAME
    label = "QR test rail"
    methods = {"qr": "Scan with the QR test app", "h5": "Pay in the QR test app"}  # noqa: RUF012
    mobile_methods = frozenset({"h5"})

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.start_error: Exception | None = None
        self.refund_error: Exception | None = None
        self.refund_moves_money = False
        self.refund_requests: list[str] = []
        self.max_refunds_per_payment: int | None = None

    def is_configured(self) -> bool:
        return bool(getattr(settings, "TEST_RAIL_ENABLED", False))

    def config_problems(self) -> list[str]:
        return ["TEST_RAIL_KEY: not a PEM RSA private key"] if self.is_configured() else []

    def start(
        self, attempt: PaymentAttempt, *, description: str, client_ip: str, return_url: str, notify_url: str
    ) -> Checkout:
        if self.start_error is not None:
            raise self.start_error
        checkout = super().start(
            attempt, description=description, client_ip=client_ip, return_url=return_url, notify_url=notify_url
        )
        # The sandbox's page is what a phone that scans the code would open.
        return Checkout(qr_text=checkout.redirect_url) if attempt.method == "qr" else checkout

    def refund(self, refund: RefundRequest, *, notify_url: str) -> RefundAnswer:
        self.refund_requests.append(refund.reference)
        if self.refund_error is not None:
            raise self.refund_error
        answer = super().refund(refund, notify_url=notify_url)
        return RefundAnswer(answer.provider_reference, succeeded=self.refund_moves_money)
