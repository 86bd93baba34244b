"""What `orders` needs from the app that takes the money, as an interface that app registers.

`orders` sits at the bottom: it places orders and knows nothing of gateways. The payments app implements
`Billing` and registers it from its AppConfig.ready(), the same way order types register themselves, so
that `orders` never imports it (and there is no import circle between the two).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils import translation
from django.utils.translation import gettext

if TYPE_CHECKING:
    from orders.models import Batch, Order


class BillingRefused(Exception):
    """The billing side refuses an operation; the message is for people."""


@dataclass(frozen=True)
class Bill:
    """A batch's merged payment as pages and the API show it."""

    id: int
    reference: str
    status: str
    amount: Decimal
    refunded_amount: Decimal
    currency: str
    pay_url: str
    expires_at: datetime | None
    # The shopper's latest try at paying was declined; while the bill is unpaid they may try again.
    declined: bool = False

    @property
    def net_amount(self) -> Decimal:
        """What the customer paid and kept paid: the amount less what came back."""
        return self.amount - self.refunded_amount


@dataclass(frozen=True)
class OrderRefund:
    """Money given back for one order, as people see it (the refund under way or done; refused ones are not)."""

    reference: str
    order_id: int
    amount: Decimal
    status: str  # "pending" or "succeeded"
    reason: str

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def reason_text(self) -> str:
        """The reason in the reader's language. The shop stores its own reasons untranslated (the message id,
        see `untranslated`), so they translate when read; a reason staff typed reads as typed."""
        return gettext(self.reason) if self.reason else ""


def untranslated(message: object) -> str:
    """A message as stored for people who read it later, each in their own language: its message id."""
    with translation.override(None):
        return str(message)


class Billing:
    """Subclass it in the app that takes the money and `register` an instance."""

    def bill_batch(self, *, batch: Batch) -> None:
        """Record the one merged payment for a batch's placed orders (every order the batch has).

        Called inside the transaction that ends placing, with the batch locked: it must not call a gateway.
        """
        raise NotImplementedError

    def cancel_bill(self, *, batch: Batch) -> None:
        """The batch is being cancelled before payment (batch locked): its bill can no longer be paid.

        Raise BillingRefused when it cannot be cancelled any more (e.g. it was paid meanwhile).
        """
        raise NotImplementedError

    def bills(self, batch_ids: Iterable[Any]) -> dict[Any, Bill]:
        """{batch id: Bill} for the batches that have one, in one query."""
        raise NotImplementedError

    def refund_order(self, *, order: Order, reason: str) -> None:
        """Give back one paid order's share (staff); raise BillingRefused with the reason when not possible."""
        raise NotImplementedError

    def refunds(self, *, batch: Batch) -> dict[int, OrderRefund]:
        """{order id: OrderRefund} for the orders of a batch that have a refund under way or done, in one query."""
        raise NotImplementedError

    def bill_of(self, batch: Batch) -> Bill | None:
        return self.bills([batch.pk]).get(batch.pk)


_registered: Billing | None = None


def register(billing: Billing) -> None:
    global _registered
    _registered = billing


def billing() -> Billing:
    if _registered is None:
        raise ImproperlyConfigured("no billing is registered: install the payments app")
    return _registered
