"""Placing a row in one PostgreSQL statement: the order interface's fast path (orders/services/placing.py).

The locked path spends seven round trips on a row (BEGIN, the row FOR UPDATE, the product, the stock, the
order, the row, its audit entry, COMMIT); this statement does the same work in one, as a data-modifying CTE
that runs in autocommit, so that it is its own transaction:

    locked     the row, FOR UPDATE of the row alone, only while it may still be placed (BatchRow.TRANSITIONS)
               and no order holds its place or its reference
    <type>     the order type's CTEs (registry.PlacingStatement), ending with `source`: e.g. the product
               and the conditional reservation of its stock, which reads `locked`, so it reserves nothing
               for a row that is not placed now
    placed     the order, INSERT ... ON CONFLICT (batch, row_index) DO NOTHING: a copy of the task that
               gets here by another way still makes no second order
    outcome    placed, or failed with the type's refusal; no row when the order was not inserted
    settled    the row's status move with its audit entry (Stateful.status_move_sql, orders/statuses.py)
    commit_mode with PLACING_ASYNCHRONOUS_COMMIT (the default), the statement's commit does not wait for its WAL
               to be flushed: the only wait a row has that no CPU can shorten. Safe because nothing outside
               the database sees a placed row before its batch's payment, whose own (synchronous) commit
               flushes the WAL up to itself, every row before it included; a row a crash loses is pending
               again, which the callback notices and recovery places (docs/performance.md)

Locks are taken in the locked path's order (orders/locking.py): the row (rank 20), then the product whose
stock the type reserves, which the reservation reaches only through `locked`.

A statement that settles nothing changes nothing (a reservation is made only together with the order, and
the order only with the row's outcome, in one statement) and returns no row: the row was settled meanwhile,
its product vanished, or something already holds its place. The caller then places the row the locked way,
which answers each of those as it always has. A reference taken by a concurrent order makes the INSERT fail
as in the locked path (IntegrityError), and is handled the same way.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from django.conf import settings
from django.db import ProgrammingError, connection
from django.db.models import Field, UniqueConstraint
from django.utils import timezone
from psycopg import sql as psycopg_sql

from orders.models import BatchRow, Order
from orders.results import PlacementResult
from orders.sql import quoted_column, quoted_table

if TYPE_CHECKING:
    from orders.registry import PlacingStatement

_PARAMETER = re.compile(r"%\((\w+)\)s")
UNKNOWN_PREPARED_STATEMENT = "26000"  # invalid_sql_statement_name


def order_place_in_one_statement(*, row: BatchRow, statement: PlacingStatement) -> PlacementResult | None:
    """Place a pending row with its type's statement; None if the statement settled nothing (see above)."""
    shape = _shape(
        statement.ctes,
        tuple(sorted(statement.computed.items())),
        tuple(statement.refusals),
        # Inside a caller's transaction the commit is not the statement's own to relax.
        asynchronous_commit=settings.PLACING_ASYNCHRONOUS_COMMIT and not connection.in_atomic_block,
    )
    params = {
        **statement.params,
        **_order_params(statement.order, shape.order_fields),
        **{f"refusal_message_{index}": message for index, message in enumerate(statement.refusals.values())},
        "row_id": row.pk,
        "owner_id": statement.order.owner_id,
        "now": timezone.now(),
    }
    found = _execute(shape, params)
    if found is None:
        return None
    outcome, failure_code, failure_message, order_id, amount = found
    if outcome == BatchRow.Outcome.PLACED:
        return PlacementResult(row=row.row_index, ok=True, order=order_id, amount=str(amount))
    return PlacementResult(row=row.row_index, ok=False, code=failure_code, error=failure_message)


@dataclass(frozen=True)
class _Shape:
    """One type's statement (the same for each of its rows), as it is prepared and executed."""

    name: str  # of the prepared statement
    prepare: str
    execute: str
    parameters: tuple[str, ...]  # the named parameters, in the order EXECUTE passes them
    # Order fields whose Python value is a parameter: every field but the computed ones that do not use it.
    order_fields: tuple[Field[Any, Any], ...]


@lru_cache(maxsize=64)
def _shape(
    ctes: str, computed: tuple[tuple[str, str], ...], refusals: tuple[str, ...], *, asynchronous_commit: bool
) -> _Shape:
    rows, orders = quoted_table(BatchRow), quoted_table(Order)

    def row_column(name: str) -> str:
        return f"r.{quoted_column(BatchRow, name)}"

    def order_column(name: str) -> str:
        return f"o.{quoted_column(Order, name)}"

    computed_sql = dict(computed)
    order_fields, columns, values = [], [], []
    for field in Order._meta.concrete_fields:
        if field.primary_key:
            continue
        own_value = f"CAST(%(order_{field.attname})s AS {field.db_type(connection)})"
        expression = computed_sql.pop(field.name, "{value}")
        if "{value}" in expression:
            order_fields.append(field)
        columns.append(quoted_column(Order, field.name))
        values.append(expression.replace("{value}", own_value))
    if computed_sql:
        raise ValueError(f"computed values for fields that Order does not have: {sorted(computed_sql)}")

    # The constraint that gives a row at most one order: the conflict a redelivered row may meet.
    place_unique = next(
        constraint.fields
        for constraint in Order._meta.constraints
        if isinstance(constraint, UniqueConstraint) and set(constraint.fields) == {"batch", "row_index"}
    )
    refusal_cases = " ".join(
        f"WHEN %(refusal_{index})s THEN %(refusal_message_{index})s" for index in range(len(refusals))
    )
    failure_message = f"CASE source.refusal {refusal_cases} ELSE '' END" if refusals else "''"
    settled, settled_params = BatchRow.status_move_sql(
        name="settled", source="outcome", also=("failure_code", "failure_message", "settled_at")
    )
    # The statement is its own transaction (autocommit), so a transaction-local setting is the statement's own.
    commit_mode = (
        "commit_mode AS (SELECT set_config('synchronous_commit', 'off', true)), " if asynchronous_commit else ""
    )
    sql = f"""
        WITH {commit_mode}locked AS (
            SELECT {row_column("id")} AS id, {row_column("outcome")} AS outcome
            FROM {rows} r
            WHERE {row_column("id")} = %(row_id)s
                AND {row_column("outcome")} = ANY(CAST(%(placeable)s AS text[]))
                AND NOT EXISTS (
                    SELECT FROM {orders} o
                    WHERE {order_column("batch")} = {row_column("batch")}
                        AND {order_column("row_index")} = {row_column("row_index")}
                )
                AND NOT EXISTS (
                    SELECT FROM {orders} o
                    WHERE {order_column("owner")} = %(owner_id)s
                        AND {order_column("reference")} = {row_column("reference")}
                )
            FOR UPDATE
        ),
        {ctes},
        placed AS (
            INSERT INTO {orders} ({", ".join(columns)})
            SELECT {", ".join(values)}
            FROM locked, source
            WHERE source.refusal IS NULL
            ON CONFLICT ({", ".join(quoted_column(Order, name) for name in place_unique)}) DO NOTHING
            RETURNING {quoted_column(Order, "id")} AS id, {quoted_column(Order, "amount")} AS amount
        ),
        outcome AS (
            SELECT
                locked.id,
                locked.outcome AS old_status,
                CASE WHEN source.refusal IS NULL THEN %(placed)s ELSE %(failed)s END AS new_status,
                CAST(coalesce(source.refusal, '') AS text) AS failure_code,
                CAST({failure_message} AS text) AS failure_message,
                CAST(%(now)s AS timestamptz) AS settled_at,
                CAST(%(now)s AS timestamptz) AS changed_at,
                CAST('' AS text) AS note
            FROM locked, source
            WHERE source.refusal IS NOT NULL OR EXISTS (SELECT FROM placed)
        ),
        {settled}
        SELECT settled.status, outcome.failure_code, outcome.failure_message, placed.id, placed.amount
        FROM settled JOIN outcome ON outcome.id = settled.id LEFT JOIN placed ON true
        {"CROSS JOIN commit_mode" if asynchronous_commit else ""}
    """
    fixed_params = {
        **settled_params,
        **{f"refusal_{index}": code for index, code in enumerate(refusals)},
        "placeable": BatchRow.statuses_before(BatchRow.Outcome.PLACED, BatchRow.Outcome.FAILED),
        "placed": BatchRow.Outcome.PLACED.value,
        "failed": BatchRow.Outcome.FAILED.value,
    }
    parameters: list[str] = []
    connection.ensure_connection()

    def positional(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in fixed_params:  # the same for every row: written into the statement, not sent with each
            return psycopg_sql.Literal(fixed_params[name]).as_string(connection.connection)
        if name not in parameters:
            parameters.append(name)
        return f"${parameters.index(name) + 1}"

    body = _PARAMETER.sub(positional, sql)
    name = f"place_row_{hashlib.sha256(body.encode()).hexdigest()[:16]}"
    return _Shape(
        name=name,
        prepare=f"PREPARE {name} AS {body}",
        execute=f"EXECUTE {name} ({', '.join(['%s'] * len(parameters))})",
        parameters=tuple(parameters),
        order_fields=tuple(order_fields),
    )


# The statements each database connection has prepared. A statement is planned once per connection instead
# of once per row, and EXECUTE is short enough for psycopg to cache its conversion, where the statement
# itself is parsed on the client for every row.
_prepared: WeakKeyDictionary[Any, set[str]] = WeakKeyDictionary()


def _execute(shape: _Shape, params: dict[str, Any]) -> tuple[Any, ...] | None:
    connection.ensure_connection()
    prepared = _prepared.setdefault(connection.connection, set())
    arguments = [params[name] for name in shape.parameters]
    with connection.cursor() as cursor:
        if shape.name not in prepared:
            cursor.execute(shape.prepare)
            prepared.add(shape.name)
        try:
            cursor.execute(shape.execute, arguments)
        except ProgrammingError as error:
            # Forgotten by the server (DISCARD ALL, DEALLOCATE): prepared again, where a failed statement
            # has not broken an enclosing transaction.
            forgotten = getattr(error.__cause__, "sqlstate", None) == UNKNOWN_PREPARED_STATEMENT
            if not forgotten or not connection.get_autocommit():
                raise
            cursor.execute(shape.prepare)
            cursor.execute(shape.execute, arguments)
        found: tuple[Any, ...] | None = cursor.fetchone()
        return found


def _order_params(order: Order, fields: tuple[Field[Any, Any], ...]) -> dict[str, Any]:
    # As Django's INSERT prepares them: defaults were applied when the order was built, pre_save adds auto_now.
    return {
        f"order_{field.attname}": field.get_db_prep_save(field.pre_save(order, add=True), connection)
        for field in fields
    }
