"""The invariant checker: SPEC section 7 as queries over the database, run by `manage.py check_invariants`
and at the end of every fault drill.

Each invariant is one set-based query that yields the ids of whatever breaks it; the checker wraps it so
that one round trip returns how many there are and the first few. Nothing loops over rows in Python, so
checking 100,000 orders costs a couple of dozen queries, not 100,000.

Every app checks what it owns. `orders` defines the registry and the checks of batches, rows, orders and
stock; the apps above it register theirs from their AppConfig.ready() (as order types and billing do), so
that this module imports none of them.

Two definitions need saying:

- **Stuck past its re-drive time.** A periodic job re-drives work that stopped moving once it has made no
  progress for a set time (BATCH_PLACING_TIMEOUT_SECONDS for a batch). Work is stuck when it has made no
  progress for that time plus one period of the job (read from CELERY_BEAT_SCHEDULE) plus
  REDRIVE_SLACK_SECONDS for the job to run: by then the job should have moved it, and it has not.
- **Stock conserved.** The stock a product started with is not recorded anywhere, so the checker cannot
  compare against it. Instead each product counts `stock_received`: every unit ever put on sale while its
  stock is tracked (the stock staff set when tracking began, plus each later change they make; see
  Product.save). Placing moves units from `stock` to an order and releasing moves them back, so at every
  moment `stock + units held by orders that were not cancelled or expired = stock_received`. This catches
  a unit taken twice, given back twice, never given back, or overwritten by a stale save — everything but
  a unit both taken and held in error in the same amount, which no bookkeeping can tell from a sale.
  Products with unlimited stock have nothing to conserve.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from orders.models import Batch, BatchRow, Order, Product, units_held
from orders.sql import quoted_table

# Time for a periodic re-drive job to be picked up and to finish, on top of its period.
REDRIVE_SLACK_SECONDS = 30
# Ids reported per kind of violation (the count is always complete).
DEFAULT_SAMPLE = 10

# What a check returns: a queryset of one column of ids, or (SQL, params) selecting one column of ids.
Found = QuerySet[Any] | tuple[str, Sequence[Any]]


@dataclass(frozen=True)
class Context:
    """What every check of one run shares: one "now", so that all of them judge the same moment."""

    now: datetime

    def before(self, seconds: float) -> datetime:
        return self.now - timedelta(seconds=seconds)

    def redrive_cutoff(self, *, after_seconds: float, job: str) -> datetime:
        """Work last moved before this is stuck: the job `job` should have re-driven it by now."""
        return self.before(after_seconds + beat_period(job) + REDRIVE_SLACK_SECONDS)


@dataclass(frozen=True)
class Invariant:
    name: str
    # What is counted, in the plural ("batch rows"), and what a violation means, in one line.
    subject: str
    explanation: str
    query: Callable[[Context], Found]


@dataclass(frozen=True)
class Violation:
    name: str
    subject: str
    explanation: str
    count: int
    ids: list[str] = field(default_factory=list)

    def line(self) -> str:
        shown = f" (e.g. {', '.join(self.ids)})" if self.ids else ""
        return f"{self.name}: {self.count} {self.subject}: {self.explanation}{shown}"


@dataclass(frozen=True)
class Report:
    checked: int
    violations: list[Violation]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.violations

    def found(self) -> dict[str, list[str]]:
        """{name: ids shown} of every kind of violation found: what a test compares with what it broke."""
        return {violation.name: violation.ids for violation in self.violations}

    def summary(self) -> str:
        if self.ok:
            return f"all {self.checked} checks passed in {self.seconds:.2f} s"
        lines = [violation.line() for violation in self.violations]
        return "\n".join([*lines, f"{len(self.violations)} of {self.checked} checks failed"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "seconds": round(self.seconds, 3),
            "violations": [asdict(violation) for violation in self.violations],
        }


_invariants: dict[str, Invariant] = {}


def register(*invariants: Invariant) -> None:
    for invariant in invariants:
        existing = _invariants.get(invariant.name)
        if existing is not None and existing != invariant:
            raise ValueError(f"an invariant named {invariant.name!r} is already registered")
        _invariants[invariant.name] = invariant


def registered() -> list[Invariant]:
    return list(_invariants.values())


def invariants_check(*, now: datetime | None = None, sample: int = DEFAULT_SAMPLE, names: Iterable[str] = ()) -> Report:
    """Run every registered check (or those named) and report each kind of violation found."""
    wanted = set(names)
    unknown = wanted - set(_invariants)
    if unknown:
        raise ValueError(f"no such invariant: {', '.join(sorted(unknown))}")
    context = Context(now=now or timezone.now())
    invariants = [invariant for invariant in registered() if not wanted or invariant.name in wanted]
    started = time.perf_counter()
    violations = [found for invariant in invariants if (found := _run(invariant, context, sample)) is not None]
    return Report(checked=len(invariants), violations=violations, seconds=time.perf_counter() - started)


def _run(invariant: Invariant, context: Context, sample: int) -> Violation | None:
    found = invariant.query(context)
    params: Sequence[Any]
    if isinstance(found, QuerySet):
        sql, params = found.order_by().query.sql_with_params()
    else:
        sql, params = found
    # The window counts every offender before LIMIT keeps the first few: one round trip for both. The
    # check's one column is named by position, whatever its name (PostgreSQL and SQLite alike).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT found.*, COUNT(*) OVER () FROM ({sql}) AS found ORDER BY 1 LIMIT %s",
            [*params, max(sample, 1)],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    return Violation(
        name=invariant.name,
        subject=invariant.subject,
        explanation=invariant.explanation,
        count=rows[0][1],
        ids=[str(row[0]) for row in rows[:sample]],
    )


def beat_period(task: str, default: float = 60.0) -> float:
    """How often Celery beat runs `task`, in seconds, from CELERY_BEAT_SCHEDULE (`default` if it is not there)."""
    for entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).values():
        if entry.get("task") != task:
            continue
        schedule = entry.get("schedule")
        if isinstance(schedule, int | float):
            return float(schedule)
        if isinstance(schedule, timedelta):
            return schedule.total_seconds()
        run_every = getattr(schedule, "run_every", None)
        if isinstance(run_every, timedelta):
            return run_every.total_seconds()
    return default


# --- SPEC 7.1: every accepted row ends as exactly one order or one recorded failure ------------------------


def _rows_lost(context: Context) -> Found:
    return (
        Batch.objects.annotate(
            recorded=Count("rows"),
            recorded_accepted=Count("rows", filter=~Q(rows__outcome=BatchRow.Outcome.REJECTED)),
        )
        .filter(~Q(recorded=F("row_count")) | ~Q(recorded_accepted=F("accepted_rows")))
        .values_list("pk")
    )


def _row_without_outcome(context: Context) -> Found:
    # While its batch is placing a row may still be pending; a batch stuck there is `batch_stuck_placing`.
    return (
        BatchRow.objects.filter(outcome=BatchRow.Outcome.PENDING)
        .exclude(batch__status=Batch.Status.PLACING)
        .values_list("pk")
    )


def _row_with_two_orders(context: Context) -> Found:
    # The unique constraint order_unique_batch_row forbids it; the check is for the day it is dropped.
    table = quoted_table(Order)
    return (
        f"SELECT o.id FROM {table} o JOIN (SELECT batch_id, row_index FROM {table} "
        "GROUP BY batch_id, row_index HAVING COUNT(*) > 1) twice USING (batch_id, row_index)",
        [],
    )


def _placed_row_without_order(context: Context) -> Found:
    order = Order.objects.filter(batch_id=OuterRef("batch_id"), row_index=OuterRef("row_index"))
    return BatchRow.objects.filter(outcome=BatchRow.Outcome.PLACED).exclude(Exists(order)).values_list("pk")


def _order_without_placed_row(context: Context) -> Found:
    placed = BatchRow.objects.filter(
        batch_id=OuterRef("batch_id"), row_index=OuterRef("row_index"), outcome=BatchRow.Outcome.PLACED
    )
    return Order.objects.exclude(Exists(placed)).values_list("pk")


# --- SPEC 7.4: a batch stuck in placing is re-driven -------------------------------------------------------


def _batch_stuck_placing(context: Context) -> Found:
    # Progress as the recovery job measures it (orders.selectors.batches_stuck_in_placing): the latest of
    # creation, dispatch and any row settling.
    cutoff = context.redrive_cutoff(
        after_seconds=settings.BATCH_PLACING_TIMEOUT_SECONDS, job="orders.tasks.recover_stuck_batches"
    )
    return (
        Batch.objects.filter(status=Batch.Status.PLACING, created_at__lte=cutoff)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=cutoff))
        .annotate(last_settled=Max("rows__settled_at"))
        .filter(Q(last_settled__isnull=True) | Q(last_settled__lte=cutoff))
        .values_list("pk")
    )


# --- Stock conserved (see the module's docstring) ----------------------------------------------------------


def _stock_not_conserved(context: Context) -> Found:
    return (
        Product.objects.filter(stock__isnull=False)
        .annotate(held=units_held())
        .filter(Q(stock_received__isnull=True) | ~Q(stock_received=F("stock") + F("held")))
        .values_list("pk")
    )


INVARIANTS = [
    Invariant(
        "rows_lost",
        "batches",
        "the rows recorded for a batch are not the rows it counted as submitted and accepted",
        _rows_lost,
    ),
    Invariant(
        "row_without_outcome",
        "batch rows",
        "an accepted row has neither an order nor a recorded failure, though its batch finished placing",
        _row_without_outcome,
    ),
    Invariant("row_with_two_orders", "orders", "one row became more than one order", _row_with_two_orders),
    Invariant(
        "placed_row_without_order",
        "batch rows",
        "a row is recorded as placed but has no order",
        _placed_row_without_order,
    ),
    Invariant(
        "order_without_placed_row",
        "orders",
        "an order's row is missing or not recorded as placed (a failed row with an order has two outcomes)",
        _order_without_placed_row,
    ),
    Invariant(
        "batch_stuck_placing",
        "batches",
        "a batch has made no progress in placing for longer than its re-drive time",
        _batch_stuck_placing,
    ),
    Invariant(
        "stock_not_conserved",
        "products",
        "stock on sale plus units held by live orders differs from the stock the product received",
        _stock_not_conserved,
    ),
]
