"""The order-type registry: what a specialised order type must provide, and the table of known types.

`orders` ships the "goods" type; other apps register theirs from their AppConfig.ready(), so that
`orders` never imports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orders.models import Batch, BatchRow, Order, Product
    from orders.rows import RowCleaner

RowErrors = dict[str, list[str]]


class PlacementRefused(Exception):
    """A business reason why one row could not become an order (a result, not a crash)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Quote:
    price: Decimal
    note: str = ""


@dataclass
class SubmissionContext:
    """Lookups shared by every row of one submission, loaded once instead of once per row."""

    owner: object
    products: dict[str, Product] = field(default_factory=dict)
    # Anything a type wants to cache for the duration of one submission.
    cache: dict = field(default_factory=dict)


class OrderType:
    """What a specialised order type provides. Subclass it and register an instance."""

    kind: str = ""
    label: str = ""
    # The fields a row of this type may carry besides "kind" and "reference".
    fields: tuple[str, ...] = ()

    def field_schemas(self) -> dict[str, dict]:
        """JSON Schema of each of `fields`, for the API's OpenAPI row shapes (see orders.rows *_schema helpers).

        A type that does not describe its fields is documented as accepting any value in them.
        """
        return {name: {} for name in self.fields}

    def required_fields(self) -> tuple[str, ...]:
        """Fields a row of this type must carry, for the OpenAPI row shapes."""
        return ()

    def example_row(self) -> dict | None:
        """A valid row of this type for the API documentation (with the demo catalogue), or None."""
        return None

    def skus(self, raw: dict) -> Iterable[str]:
        """Product SKUs a raw row refers to, so the submission can load them all in one query."""
        return ()

    def clean_row(self, row: RowCleaner, context: SubmissionContext) -> None:
        """Validate and normalise one submitted row into row.data, recording problems with row.error()."""
        raise NotImplementedError

    def quote(self, data: dict, context: SubmissionContext) -> Quote:
        """The price of a valid row as it would be placed now, and a short note for people."""
        raise NotImplementedError

    def warnings(self, rows: list[tuple[int, dict]]) -> list[dict]:
        """Advice about the accepted rows of this type taken together (e.g. the same account twice)."""
        return []

    def place(self, *, batch: Batch, row: BatchRow) -> Order:
        """Create the order for one accepted row inside the caller's transaction, or raise PlacementRefused."""
        raise NotImplementedError

    def after_payment(self, orders: list[Order]) -> None:
        """Called once the merged payment covering these orders succeeded (they are already `paid`)."""

    def release(self, order: Order) -> None:
        """Give back what placing reserved, when an unpaid order is cancelled or expires."""


_types: dict[str, OrderType] = {}


def register(order_type: OrderType) -> None:
    if not order_type.kind:
        raise ValueError("an order type needs a kind")
    existing = _types.get(order_type.kind)
    if existing is not None and type(existing) is not type(order_type):
        raise ValueError(f"order type {order_type.kind!r} is already registered by {type(existing).__name__}")
    _types[order_type.kind] = order_type


def get(kind: str) -> OrderType | None:
    return _types.get(kind)


def kinds() -> list[str]:
    return sorted(_types)


def all_types() -> list[OrderType]:
    return [_types[kind] for kind in kinds()]
