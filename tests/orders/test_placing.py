"""The order interface on its own (no worker): outcomes, idempotency and what a refusal leaves behind."""

from decimal import Decimal

from orders import services
from orders.models import BatchRow, Order, Product
from tests.orders.factories import ProductFactory


def test_a_reference_taken_between_validation_and_placing_fails_the_row_and_returns_the_stock(user):
    ProductFactory(sku="LAMP", unit_price=Decimal("40.00"), stock=5)
    first = services.batch_submit(owner=user, rows=[{"kind": "goods", "sku": "LAMP", "reference": "PO-9"}]).batch
    second = services.batch_submit(owner=user, rows=[{"kind": "goods", "sku": "LAMP"}]).batch
    # two submissions raced past validation with the same reference
    BatchRow.objects.filter(batch=second).update(reference="PO-9")
    services.order_place(batch_id=first.pk, row_index=0)

    result = services.order_place(batch_id=second.pk, row_index=0)

    assert (result.ok, result.code) == (False, "reference_used")
    assert result.error == "Reference PO-9 is already used by another order."
    assert not Order.objects.filter(batch=second).exists()
    assert Product.objects.get(sku="LAMP").stock == 4  # the failed row's unit went back


def test_placing_a_settled_row_again_returns_the_same_outcome(user):
    ProductFactory(sku="LAMP", stock=1)
    batch = services.batch_submit(owner=user, rows=[{"kind": "goods", "sku": "LAMP"}] * 2).batch

    first = [services.order_place(batch_id=batch.pk, row_index=i) for i in (0, 1)]
    again = [services.order_place(batch_id=batch.pk, row_index=i) for i in (0, 1)]

    assert first == again
    assert [r.ok for r in first] == [True, False] and first[1].code == "out_of_stock"
    assert Order.objects.filter(batch=batch).count() == 1


def test_a_redispatch_places_only_the_rows_without_an_outcome(place_batch):
    ProductFactory(sku="NUT", unit_price=Decimal("1.00"), stock=10)
    batch = place_batch([{"kind": "goods", "sku": "NUT"}] * 5, place=[0, 3])

    dispatch = services.batch_mark_dispatched(batch_id=batch.pk)

    # a re-dispatch after a lost worker: rows 0 and 3 are placed and not sent again
    assert dispatch.row_indexes == [1, 2, 4]
    assert not dispatch.complete  # so its callback finishes the batch from the database


def test_a_first_dispatch_places_every_accepted_row(place_batch):
    ProductFactory(sku="BOLT", unit_price=Decimal("1.00"), stock=10)
    batch = place_batch([{"kind": "goods", "sku": "BOLT"}] * 3, place=[])

    dispatch = services.batch_mark_dispatched(batch_id=batch.pk)

    assert dispatch.row_indexes == [0, 1, 2]
    assert dispatch.complete
