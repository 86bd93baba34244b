"""Placing a row in one PostgreSQL statement: two round trips a row, the same outcome as the locked way, and the
same guarantees under redelivery and races."""

import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from orders import messages, registry, services
from orders.goods import ProductOrderType
from orders.models import BatchRow, BatchRowStatusChange, Order, Product
from orders.services.placing_statement import order_place_in_one_statement
from orders.tasks import place_row
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory
from tests.orders.placing_ways import (
    place_every_row,
    round_trips,
    stock,
    submit,
    the_locked_way_only,
    what_placing_left,
)
from tests.support.wire import as_in_a_worker, traced

GOODS_ROWS: list[dict[str, Any]] = [
    {"kind": "goods", "sku": "TRACKED", "quantity": 2},
    {"kind": "goods", "sku": "UNLIMITED", "quantity": 3},
    {"kind": "goods", "sku": "LAST-ONE"},
    {"kind": "goods", "sku": "LAST-ONE"},  # out of stock: the unit went to the row before
    {"kind": "goods", "sku": "WITHDRAWN"},  # taken off sale after the batch was accepted
    {"kind": "goods", "sku": "TRACKED", "reference": "PO-17"},
    {"kind": "goods", "sku": "UNLIMITED", "reference": "PO-18"},  # its reference is taken before it is placed
]


@pytest.fixture
def catalogue(db):
    ProductFactory(sku="TRACKED", name="Lamp", unit_price=Decimal("40.05"), stock=10)
    ProductFactory(sku="UNLIMITED", name="E-book", unit_price=Decimal("3.33"), stock=None)
    ProductFactory(sku="LAST-ONE", name="Vase", unit_price=Decimal("99.00"), stock=1)
    ProductFactory(sku="WITHDRAWN", name="Chair", unit_price=Decimal("12.00"), stock=4)


def take_off_sale_and_take_reference(owner):
    Product.objects.filter(sku="WITHDRAWN").update(active=False)
    # another batch of the shopper's raced past validation with the same reference, and was placed first
    other = submit(owner, [{"kind": "goods", "sku": "UNLIMITED", "reference": "OTHER"}])
    BatchRow.objects.filter(batch=other).update(reference="PO-18")
    services.order_place(batch_id=other.pk, row_index=0)


def test_one_statement_and_the_locked_way_leave_the_same_orders_rows_audit_and_stock(catalogue):
    # given: the same rows for two shoppers, and the same catalogue before each placing
    before = stock()
    shoppers = [UserFactory(), UserFactory()]
    batches = [submit(shopper, GOODS_ROWS) for shopper in shoppers]
    taken_stock = []
    outcomes = []

    # when: one batch is placed row by row in one statement each, the other the locked way
    for shopper, batch, locked in zip(shoppers, batches, (False, True), strict=True):
        Product.objects.filter(sku="WITHDRAWN").update(active=True)
        Product.objects.bulk_update([Product(pk=p.pk, stock=before[p.sku]) for p in Product.objects.all()], ["stock"])
        take_off_sale_and_take_reference(shopper)
        if locked:
            with the_locked_way_only():
                results = place_every_row(batch)
        else:
            results = place_every_row(batch)
        taken_stock.append(stock())
        outcomes.append((results, what_placing_left(batch)))

    # then: the same results, orders, outcomes, audit entries and stock either way
    assert outcomes[0] == outcomes[1]
    assert taken_stock[0] == taken_stock[1]
    results, left = outcomes[0]
    assert [(r["ok"], r["code"]) for r in results] == [
        (True, ""),
        (True, ""),
        (True, ""),
        (False, "out_of_stock"),
        (False, "inactive"),
        (True, ""),
        (False, "reference_used"),
    ]
    assert left["rows"][3][3] == str(messages.OUT_OF_STOCK).format(sku="LAST-ONE")
    assert left["rows"][4][3] == str(messages.NOT_ON_SALE_ANYMORE).format(sku="WITHDRAWN")
    assert left["orders"][0]["amount"] == Decimal("80.10")
    assert left["orders"][0]["details"] == {"sku": "TRACKED", "name": "Lamp"}
    assert left["number_lengths"] == [16] and left["settled_at_set"]
    assert taken_stock[0] == {"TRACKED": 7, "UNLIMITED": None, "LAST-ONE": 0, "WITHDRAWN": 4}


def test_a_goods_row_takes_two_round_trips_and_never_more_than_three(catalogue, user):
    batch = submit(user, [{"kind": "goods", "sku": "TRACKED"}, {"kind": "goods", "sku": "UNLIMITED"}] * 2)

    trips = [round_trips(batch.pk, row_index) for row_index in range(4)]

    # the row, then the statement (the first on a connection also prepares it)
    assert all(len(statements) <= 3 for statements in trips), trips
    assert [len(statements) for statements in trips[2:]] == [2, 2]
    assert all(statements[-1].startswith("EXECUTE place_row_") for statements in trips)
    assert Order.objects.filter(batch=batch).count() == 4


def test_a_redelivered_row_after_success_makes_no_second_order_and_takes_stock_once(catalogue, user):
    batch = submit(user, [{"kind": "goods", "sku": "TRACKED", "quantity": 3}])
    first = place_row(str(batch.pk), 0)

    again = [place_row(str(batch.pk), 0) for _ in range(3)]  # a redelivered message runs the same task again

    assert again == [first] * 3
    assert Order.objects.filter(batch=batch).count() == 1
    assert Product.objects.get(sku="TRACKED").stock == 7
    assert BatchRowStatusChange.objects.filter(row__batch=batch).count() == 1


def test_the_statement_of_a_copy_that_read_the_row_before_it_was_placed_changes_nothing(catalogue, user):
    # given: a copy of the task read the row while it was pending; the other copy placed it meanwhile
    batch = submit(user, [{"kind": "goods", "sku": "TRACKED", "quantity": 3}])
    stale = BatchRow.objects.select_related("batch").get(batch=batch, row_index=0)
    services.order_place(batch_id=batch.pk, row_index=0)
    order = Order.objects.get(batch=batch)

    # when: the copy runs its statement
    statement = registry.require("goods").placing_statement(batch=stale.batch, row=stale)
    assert statement is not None
    outcome = order_place_in_one_statement(row=stale, statement=statement)

    # then: the statement settles nothing, reserves nothing and inserts nothing; the read path answers
    assert outcome is None
    assert list(Order.objects.filter(batch=batch)) == [order]
    assert Product.objects.get(sku="TRACKED").stock == 7
    assert BatchRowStatusChange.objects.filter(row__batch=batch).count() == 1
    assert services.order_place(batch_id=batch.pk, row_index=0).order == order.pk


@pytest.mark.django_db(transaction=True)
def test_ten_rows_racing_for_the_last_unit_place_exactly_one():
    # given: one unit left and ten rows that each want it
    ProductFactory(sku="LAST", unit_price=Decimal("5.00"), stock=1)
    batch = submit(UserFactory(), [{"kind": "goods", "sku": "LAST"}] * 10)
    start = threading.Barrier(10)
    results = {}

    def place(row_index):
        try:
            start.wait()
            results[row_index] = services.order_place(batch_id=batch.pk, row_index=row_index)
        finally:
            connection.close()

    # when: all ten are placed at the same moment, each on its own connection
    threads = [threading.Thread(target=place, args=(row_index,)) for row_index in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: one order; nine failures that say why
    assert sorted(result.ok for result in results.values()) == [False] * 9 + [True]
    assert {result.error for result in results.values() if not result.ok} == {
        str(messages.OUT_OF_STOCK).format(sku="LAST")
    }
    assert Order.objects.filter(batch=batch).count() == 1
    assert Product.objects.get(sku="LAST").stock == 0
    assert BatchRow.objects.filter(batch=batch, outcome=BatchRow.Outcome.FAILED).count() == 9
    assert BatchRowStatusChange.objects.filter(row__batch=batch).count() == 10


@pytest.mark.django_db(transaction=True)
def test_the_task_in_a_worker_places_a_row_in_two_round_trips_on_the_wire():
    ProductFactory(sku="PEN", unit_price=Decimal("1.50"), stock=100)
    batch = submit(UserFactory(), [{"kind": "goods", "sku": "PEN"}] * 5)

    def place_traced(row_index: int) -> list[str]:
        with traced(connection) as sent:
            place_row.apply((str(batch.pk), row_index), throw=True)  # the task, with the signals around it
        return sent

    with as_in_a_worker():
        connection.close()
        connection.ensure_connection()
        in_a_worker = [place_traced(row_index) for row_index in range(4)]
    connection.ensure_connection()
    as_the_web_would = place_traced(4)

    # the first row on a connection also prepares the statement; then the row, the statement, nothing else
    assert len(in_a_worker[0]) <= 3
    assert [len(sent) for sent in in_a_worker[1:]] == [2, 2, 2], in_a_worker
    assert all(sent[-1].startswith("EXECUTE place_row_") for sent in in_a_worker)
    # what a worker no longer sends before each task, and the count would see: the health check
    assert as_the_web_would[0] == "SELECT 1"
    assert Order.objects.filter(batch=batch).count() == 5


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("asynchronous", [True, False], ids=["asynchronous commit", "synchronous commit"])
def test_a_row_placed_in_its_own_transaction_leaves_the_connection_committing_as_before(settings, asynchronous):
    settings.PLACING_ASYNCHRONOUS_COMMIT = asynchronous
    ProductFactory(sku="PEN", unit_price=Decimal("1.50"), stock=5)
    batch = submit(UserFactory(), [{"kind": "goods", "sku": "PEN"}] * 2)

    results = [services.order_place(batch_id=batch.pk, row_index=index) for index in range(2)]

    assert [result.ok for result in results] == [True, True]
    assert Product.objects.get(sku="PEN").stock == 3
    # the relaxed commit was the statement's own: what the worker commits next waits for the disk as usual
    assert synchronous_commit() == "on"


def test_a_row_placed_inside_a_callers_transaction_leaves_its_commit_alone(catalogue, user):
    batch = submit(user, [{"kind": "goods", "sku": "TRACKED"}])

    assert services.order_place(batch_id=batch.pk, row_index=0).ok  # inside the test's transaction

    assert synchronous_commit() == "on"


@pytest.mark.django_db(transaction=True)
def test_a_statement_the_server_forgot_is_prepared_again():
    ProductFactory(sku="PEN", unit_price=Decimal("1.50"), stock=None)
    batch = submit(UserFactory(), [{"kind": "goods", "sku": "PEN"}] * 2)
    services.order_place(batch_id=batch.pk, row_index=0)

    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as a pooler resetting the session would
    result = services.order_place(batch_id=batch.pk, row_index=1)

    assert result.ok
    assert Order.objects.filter(batch=batch).count() == 2


def test_a_type_that_changes_place_but_inherits_the_statement_is_refused():
    class Engraved(ProductOrderType):
        kind = "engraved"

        def place(self, *, batch, row):
            return super().place(batch=batch, row=row)  # and an engraving, which the statement knows nothing of

    with pytest.raises(ValueError, match="override placing_statement"):
        registry.register(Engraved())
    assert registry.get("engraved") is None
