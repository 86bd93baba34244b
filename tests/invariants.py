"""Helpers the invariant checker's tests share: build a consistent state through the services, break one
thing, and see what the checker finds."""

from django.db import connection

from orders import locking, selectors, services
from orders.invariants import invariants_check
from orders.models import Batch
from payments import services as payment_services
from payments.models import Payment, PaymentAttempt


def found(**kwargs) -> dict[str, list[str]]:
    """{kind of violation: ids} of everything the checker finds now."""
    return invariants_check(sample=100, **kwargs).found()


def submit(user, rows, *, place=True, finalize=True) -> Batch:
    """A batch recorded, placed and finalised synchronously through the services (no worker)."""
    batch = services.batch_submit(owner=user, rows=rows).batch
    if place:
        for row_index in range(len(rows)):
            services.order_place(batch_id=batch.pk, row_index=row_index)
    if place and finalize:
        services.batch_finalize(batch_id=batch.pk, results=selectors.batch_results_from_database(batch))
    batch.refresh_from_db()
    return batch


def drop_unique(table: str, columns: list[str]) -> None:
    """Drop the unique constraint on `columns`, to build a state the database would refuse.

    It is rolled back with the test's transaction. PostgreSQL alters no table with deferred checks pending, so
    those of what the test wrote so far are run first.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        constraints = connection.introspection.get_constraints(cursor, table)
        [name] = [
            name
            for name, constraint in constraints.items()
            if constraint["unique"] and not constraint["primary_key"] and constraint["columns"] == columns
        ]
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')


def pay(batch: Batch) -> None:
    """The batch's payment applied as its success notification would apply it, on an attempt the gateway
    never saw."""
    from tests.payments.factories import PaymentAttemptFactory

    attempt = PaymentAttemptFactory(payment=Payment.objects.get(batch=batch))
    with locking.transaction():
        locked = locking.lock_one(Batch.objects.filter(pk=batch.pk))
        payment = locking.lock_one(Payment.objects.filter(batch=batch))
        attempt = locking.lock_one(PaymentAttempt.objects.filter(pk=attempt.pk))
        payment_services.attempt_apply_success(locked, payment, attempt)
