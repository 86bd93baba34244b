"""The two ways a row is placed — one PostgreSQL statement, or the locked way through its type's `place` — and
what each leaves behind, so that tests can show they leave the same."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any
from unittest import mock

from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import services
from orders.models import Batch, BatchRow, BatchRowStatusChange, Order, Product
from tests.orders.pipeline import dispatch_suppressed

# What two placings of the same rows must agree on (the rest is an id, a random number or a time).
ORDER_FIELDS = ["row_index", "kind", "product__sku", "quantity", "unit_price", "amount", "currency", "status"]
ORDER_FIELDS += ["reference", "details"]


@contextmanager
def the_locked_way_only():
    """Every row is placed the locked way, as for a type without a statement or on SQLite."""
    with mock.patch("orders.services.placing._statement_for", return_value=None):
        yield


def submit(owner, rows: list[dict[str, Any]]) -> Batch:
    with dispatch_suppressed():
        return services.batch_submit(owner=owner, rows=rows).batch


def place_every_row(batch: Batch) -> list[dict[str, Any]]:
    """Place each row as place_row does; the results without the order's id."""
    results = []
    for row_index in range(batch.accepted_rows):
        result = services.order_place(batch_id=batch.pk, row_index=row_index).as_dict()
        result.pop("order")
        results.append(result)
    return results


def what_placing_left(batch: Batch) -> dict[str, Any]:
    """The batch's orders, rows and audit entries, without ids, order numbers and times."""
    orders = list(Order.objects.filter(batch=batch).order_by("row_index").values(*ORDER_FIELDS))
    rows = list(batch.rows.order_by("row_index").values_list("row_index", "outcome", "failure_code", "failure_message"))
    audit = list(
        BatchRowStatusChange.objects.filter(row__batch=batch)
        .order_by("row__row_index", "id")
        .values_list("row__row_index", "old_status", "new_status", "note")
    )
    numbers = Order.objects.filter(batch=batch).values_list("number", flat=True)
    settled = batch.rows.exclude(outcome=BatchRow.Outcome.PENDING)
    return {
        "orders": orders,
        "rows": rows,
        "audit": audit,
        "number_lengths": sorted({len(number) for number in numbers}),
        "settled_at_set": all(row.settled_at is not None for row in settled),
    }


def stock() -> dict[str, int | None]:
    return dict(Product.objects.values_list("sku", "stock"))


def round_trips(batch_id, row_index: int) -> list[str]:
    """The SQL statements placing one row sends, transaction control included (each is a round trip)."""
    with CaptureQueriesContext(connection) as captured:
        services.order_place(batch_id=batch_id, row_index=row_index)
    return [query["sql"] for query in captured.captured_queries]
