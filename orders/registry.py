"""The order-type registry: what a specialised order type must provide, and the table of known types.

`orders` ships the "goods" type; other apps register theirs from their AppConfig.ready(), so that
`orders` never imports them. A type is a complete plug-in: besides validating, pricing and placing its
rows, it supplies the inputs of its checkout row (a template partial), reads its lines of a pasted list
or CSV file, describes its orders to people and to the gateway, and takes over after payment. Nothing in
`orders` names any type but its own "goods".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django import forms
    from django_stubs_ext import StrPromise

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
class PlacingStatement:
    """A row's placing as one PostgreSQL statement: the part an order type adds to the statement that
    `orders.services.placing_statement` builds around it.

    That statement locks the row (a CTE named `locked`, empty unless the row may still be placed), runs
    `ctes`, inserts `order` — the order as Python knows it, with the columns in `computed` taken from the
    CTE named `source` instead — settles the row as placed, or as failed when `source.refusal` names one
    of `refusals`, and writes the row's audit entry. `ctes` are "name AS (...)" definitions separated by
    commas, the last named `source` (at most one row, with a text column `refusal`, NULL when the row can
    be placed); a CTE that changes data must read `locked`, so that it changes nothing for a row that is
    not placed now. Parameters are named (`%(name)s`) and cast where PostgreSQL cannot infer their type.
    """

    order: Order
    ctes: str
    params: dict[str, Any] = field(default_factory=dict)
    # Order field name -> SQL expression over `source`; "{value}" in it stands for the order's own value.
    computed: dict[str, str] = field(default_factory=dict)
    # Refusal code -> the failure message recorded on the row.
    refusals: dict[str, str] = field(default_factory=dict)


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
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Description:
    """How an order reads to people: a title ("T-shirt M × 2") and an optional detail in a quieter voice."""

    title: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.title} · {self.detail}" if self.detail else self.title


@dataclass
class ImportContext:
    """Lookups shared by every line of one pasted list or CSV file, loaded once instead of once per line."""

    # Products whose SKU is the first field of some line (one query for the whole import).
    products: dict[str, Product] = field(default_factory=dict)
    # The import form's options, by kind: {kind: {option name: cleaned value}} (see OrderType.import_options).
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


class OrderType:
    """What a specialised order type provides. Subclass it and register an instance."""

    kind: str = ""
    label: str | StrPromise = ""  # usually translated: gettext_lazy("Goods")
    # The fields a row of this type may carry besides "kind" and "reference".
    fields: tuple[str, ...] = ()
    # Where the type stands in the checkout's kind menu (lower first; ties by kind).
    menu_order: int = 100

    # --- the website checkout ------------------------------------------------------------------
    # The template partial with this type's inputs in one checkout row. It is rendered with `p`, the
    # prefix of this type's input names ("rows-3-goods": inputs are named "rows-3-goods-sku"), `v` and
    # `errors`, this type's values and errors by field name, and `order_type`. The tag
    # `{% row_input "sku" _("Product SKU") %}` ({% load checkout_rows %}) renders one labelled input with
    # its error span. The default shows one text input per field, labelled with the field's name.
    row_template: str = "orders/_fields_row.html"
    # When a pasted line is offered to each type in turn (lower first; ties by kind).
    import_order: int = 100
    # The line format(s) this type reads, for the import form's help text, e.g. "SKU,quantity".
    import_hint: str | StrPromise = ""
    # First fields that mark a header line of a CSV file written for this type (compared in lower case).
    import_headers: tuple[str, ...] = ()

    def field_schemas(self) -> dict[str, dict[str, Any]]:
        """JSON Schema of each of `fields`, for the API's OpenAPI row shapes (see orders.rows *_schema helpers).

        A type that does not describe its fields is documented as accepting any value in them.
        """
        return {name: {} for name in self.fields}

    def required_fields(self) -> tuple[str, ...]:
        """Fields a row of this type must carry, for the OpenAPI row shapes."""
        return ()

    def example_row(self) -> dict[str, Any] | None:
        """A valid row of this type for the API documentation (with the demo catalogue), or None."""
        return None

    def skus(self, raw: dict[str, Any]) -> Iterable[str]:
        """Product SKUs a raw row refers to, so the submission can load them all in one query."""
        return ()

    def clean_row(self, row: RowCleaner, context: SubmissionContext) -> None:
        """Validate and normalise one submitted row into row.data, recording problems with row.error()."""
        raise NotImplementedError

    def quote(self, data: dict[str, Any], context: SubmissionContext) -> Quote:
        """The price of a valid row as it would be placed now, and a short note for people."""
        raise NotImplementedError

    def note(self, data: dict[str, Any], context: SubmissionContext) -> str:
        """A note about a row that is not valid yet, from the fields that are (row.data as clean_row left it):
        what people can already be told, such as the product a SKU names while its quantity is still wrong."""
        return ""

    def warnings(self, rows: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Advice about the accepted rows of this type taken together (e.g. the same account twice)."""
        return []

    def place(self, *, batch: Batch, row: BatchRow) -> Order:
        """Create the order for one accepted row inside the caller's transaction, or raise PlacementRefused."""
        raise NotImplementedError

    def placing_statement(self, *, batch: Batch, row: BatchRow) -> PlacingStatement | None:
        """The same placing as `place`, as one PostgreSQL statement (see PlacingStatement), or None.

        Optional, for speed: a row of a type that returns None, and every row on another database, is placed
        by `place` inside a transaction that holds the row's lock. Both ways must give the same order, stock
        and outcome for the same row.
        """
        return None

    def after_payment(self, orders: list[Order]) -> None:
        """Called once the merged payment covering these orders succeeded (they are already `paid`)."""

    def release(self, order: Order) -> None:
        """Give back what placing reserved, when an unpaid order is cancelled or expires."""

    def describe(self, order: Order) -> Description:
        """How the order reads on the batch page, in the admin and in the gateway's item list."""
        return Description(str(self.label or self.kind))

    def describe_row(self, data: dict[str, Any]) -> Description:
        """How an accepted row that could not be placed reads (its validated data; there is no order)."""
        return Description(" · ".join(str(data[name]) for name in self.fields if data.get(name) not in (None, "")))

    def import_options(self) -> dict[str, forms.Field]:
        """Extra fields of the import form that this type reads (e.g. a default for a column left out)."""
        return {}

    def import_row(self, fields: list[str], context: ImportContext) -> dict[str, Any] | None:
        """Claim one pasted or CSV line (its fields, stripped) as a raw row of this type, or None to pass."""
        return None


_types: dict[str, OrderType] = {}


def register(order_type: OrderType) -> None:
    if not order_type.kind:
        raise ValueError("an order type needs a kind")
    _check_placing_ways_agree(type(order_type))
    existing = _types.get(order_type.kind)
    if existing is not None and type(existing) is not type(order_type):
        raise ValueError(f"order type {order_type.kind!r} is already registered by {type(existing).__name__}")
    _types[order_type.kind] = order_type


def _check_placing_ways_agree(cls: type[OrderType]) -> None:
    """A type that changes `place` must say how its statement changes too: an inherited statement would place
    its rows without what its own `place` adds (return None from placing_statement to use `place` alone)."""
    place_from = next(klass for klass in cls.__mro__ if "place" in vars(klass))
    statement_from = next(klass for klass in cls.__mro__ if "placing_statement" in vars(klass))
    if statement_from is not OrderType and place_from is not statement_from and issubclass(place_from, statement_from):
        raise ValueError(
            f"{cls.__name__} overrides place() but inherits placing_statement() from {statement_from.__name__}: "
            "override placing_statement() too"
        )


def get(kind: str) -> OrderType | None:
    return _types.get(kind)


def require(kind: str) -> OrderType:
    """The type of a row or order that was validated, so its kind is known to be registered."""
    order_type = _types.get(kind)
    if order_type is None:
        raise LookupError(f"no order type {kind!r} is registered")
    return order_type


def kinds() -> list[str]:
    return sorted(_types)


def all_types() -> list[OrderType]:
    return [_types[kind] for kind in kinds()]


def menu() -> list[OrderType]:
    """The types in the order the checkout offers them."""
    return sorted(_types.values(), key=lambda order_type: (order_type.menu_order, order_type.kind))


def importers() -> list[OrderType]:
    """The types in the order they are asked to claim a pasted line."""
    return sorted(_types.values(), key=lambda order_type: (order_type.import_order, order_type.kind))


def label(kind: str) -> str:
    """The name people read for a kind ("Mobile top-up"); a kind no longer registered reads as itself."""
    order_type = _types.get(kind)
    return str(order_type.label or kind) if order_type is not None else kind


def describe(order: Order) -> Description:
    """An order's description by its type; an order whose type is no longer registered still reads."""
    order_type = _types.get(order.kind)
    return order_type.describe(order) if order_type is not None else Description(order.kind)
