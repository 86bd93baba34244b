"""Row locks: the one place a row is locked, in one order everywhere.

Two transactions that lock the same rows in different orders can deadlock, so every lock is taken through
these helpers inside `transaction()`, and each model states its place in the order as `LOCK_RANK`:

    10  orders.Batch
    20  orders.BatchRow
    30  payments.Payment          (the batch's merged payment)
    35  payments.PaymentAttempt   (the tries at paying it, on one rail each)
    40  orders.Order              (many at once, by primary key)
    50  records kept per order by the apps above: refunds, and the like
    90  orders.OutboxMessage      (work promised by a commit, claimed by the publisher alone)

A lock on a lower rank after a higher one in the same transaction raises `LockOrderViolation` at once, in
every environment: the lock order is code, not a docstring. Stock is taken by conditional UPDATEs that lock
a product row last (after the row or orders that need it).

Placing a row in one SQL statement (orders/services/placing_statement.py) is the one place that locks in SQL
rather than here: a statement is its own transaction, and it takes the same locks in the same order (the row
FOR UPDATE of the row alone, then the product's stock through the row).

Only the rows named are locked (`of=("self",)`): a query that joins another table for reading does not
lock that table's rows too. No network call (gateway, upstream) may happen while a lock is held: services
record an intent, call after commit, and apply the answer in another short transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import connection as db_connection
from django.db import models
from django.db import transaction as db_transaction

ModelT = TypeVar("ModelT", bound=models.Model)


class LockOrderViolation(RuntimeError):
    """A row was locked out of the documented order (or outside `transaction()`)."""


_held = threading.local()


@contextmanager
def transaction() -> Iterator[None]:
    """An atomic block in which rows may be locked. Nested blocks share the outer block's lock order.

    A block opened while no transaction is open starts a fresh order even if an outer block has not finished
    exiting: what runs on its commit (a task run eagerly, without a broker) runs after its locks are gone.
    """
    if getattr(_held, "ranks", None) is not None and db_connection.in_atomic_block:
        with db_transaction.atomic():
            yield
        return
    outer, _held.ranks = getattr(_held, "ranks", None), []
    try:
        with db_transaction.atomic():
            yield
    finally:
        _held.ranks = outer


def lock_one(queryset: models.QuerySet[ModelT]) -> ModelT:
    """Lock the one row the queryset names (DoesNotExist / MultipleObjectsReturned as `get`)."""
    _take(queryset.model)
    return queryset.select_for_update(of=("self",)).get()


def lock_first(queryset: models.QuerySet[ModelT]) -> ModelT | None:
    """Lock the row the queryset names, or return None when there is none."""
    _take(queryset.model)
    return queryset.select_for_update(of=("self",)).order_by("pk").first()


def lock_all(queryset: models.QuerySet[ModelT], *, skip_locked: bool = False, limit: int | None = None) -> list[ModelT]:
    """Lock every row the queryset names, in primary-key order (two callers locking overlapping sets agree).

    With skip_locked, rows another transaction holds are left out instead of waited for (work queues).
    """
    _take(queryset.model)
    locked = queryset.select_for_update(of=("self",), skip_locked=skip_locked).order_by("pk")
    return list(locked[:limit] if limit is not None else locked)


def _take(model: type[models.Model]) -> None:
    ranks = getattr(_held, "ranks", None)
    if ranks is None:
        raise LockOrderViolation(f"{model.__name__} locked outside orders.locking.transaction()")
    rank = getattr(model, "LOCK_RANK", None)
    if rank is None:
        raise LockOrderViolation(f"{model.__name__} has no LOCK_RANK: add it to the order in orders/locking.py")
    if ranks and rank < max(ranks):
        raise LockOrderViolation(
            f"{model.__name__} (rank {rank}) locked after a rank-{max(ranks)} row: see the order in orders/locking.py"
        )
    ranks.append(rank)
