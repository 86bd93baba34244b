"""Stock, cancel, retry and progress: what a shopper sees of a batch around placing (the tests with the worker
run on Redis and on RabbitMQ)."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from orders import services
from orders.models import Batch, BatchRow, Order, OrderStatusChange, Product
from payments.models import Payment
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory

pytestmark = pytest.mark.every_broker


def test_two_concurrent_batches_never_oversell(worker, wait_for_batch):
    # given: 5 units left and two shoppers who each want 5, one row per unit
    ProductFactory(sku="LAST", stock=5)
    rows = [{"kind": "goods", "sku": "LAST"}] * 5
    shoppers = [UserFactory(), UserFactory()]
    batch_ids = []

    def submit(owner):
        try:
            batch_ids.append(services.batch_submit(owner=owner, rows=rows).batch.pk)
        finally:
            connection.close()  # a thread's own connection would outlive the test database

    # when: both submit at the same moment and the worker places both batches' rows interleaved
    threads = [threading.Thread(target=submit, args=(owner,)) for owner in shoppers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batches = [wait_for_batch(batch_id) for batch_id in batch_ids]

    # then: exactly the 5 units were sold, no more
    assert Order.objects.filter(batch__in=batches).count() == 5
    assert BatchRow.objects.filter(batch__in=batches, failure_code="out_of_stock").count() == 5
    assert Product.objects.get(sku="LAST").stock == 0


def test_cancelling_an_unpaid_batch_cancels_its_orders_and_releases_stock(worker, api_client, user, wait_for_batch):
    ProductFactory(sku="CHAIR", stock=10, unit_price=Decimal("80.00"))
    batch_id = api_client.post(
        "/api/v1/batches/", {"rows": [{"kind": "goods", "sku": "CHAIR", "quantity": 3}] * 2}, format="json"
    ).json()["id"]
    wait_for_batch(batch_id)
    assert Product.objects.get(sku="CHAIR").stock == 4

    response = api_client.post(f"/api/v1/batches/{batch_id}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert set(Order.objects.filter(batch_id=batch_id).values_list("status", flat=True)) == {"cancelled"}
    assert OrderStatusChange.objects.filter(order__batch_id=batch_id, new_status="cancelled").count() == 2
    assert Payment.objects.get(batch_id=batch_id).status == Payment.Status.CANCELLED
    assert Product.objects.get(sku="CHAIR").stock == 10

    again = api_client.post(f"/api/v1/batches/{batch_id}/cancel/")
    assert again.status_code == 409
    assert again.json()["detail"] == "Only a batch awaiting payment can be cancelled; this one is cancelled."
    assert Product.objects.get(sku="CHAIR").stock == 10


def test_retry_failed_places_the_failed_rows_again_as_a_linked_batch(worker, api_client, wait_for_batch):
    ProductFactory(sku="KIT", stock=1, unit_price=Decimal("5.00"))
    rows = [{"kind": "goods", "sku": "KIT", "reference": f"PO-{i}"} for i in range(3)]
    first = wait_for_batch(api_client.post("/api/v1/batches/", {"rows": rows}, format="json").json()["id"])
    assert first.rows.filter(outcome="failed").count() == 2
    Product.objects.filter(sku="KIT").update(stock=5)  # restocked

    response = api_client.post(f"/api/v1/batches/{first.pk}/retry-failed/")

    assert response.status_code == 202
    retry = wait_for_batch(response.json()["id"])
    assert retry.retry_of_id == first.pk
    assert retry.row_count == 2
    assert retry.status == Batch.Status.AWAITING_PAYMENT
    # the failed rows' references were free again and travel with them
    failed_refs = set(first.rows.filter(outcome="failed").values_list("reference", flat=True))
    assert set(Order.objects.filter(batch=retry).values_list("reference", flat=True)) == failed_refs
    assert api_client.post(f"/api/v1/batches/{retry.pk}/retry-failed/").json()["detail"] == (
        "This batch has no failed rows to place again."
    )


def test_progress_counts_come_from_the_rows(api_client, place_batch):
    ProductFactory(sku="A")
    batch = place_batch(
        [{"kind": "goods", "sku": "A"}] * 3 + [{"kind": "goods", "sku": "B"}], skip_invalid=True, place=[0]
    )

    detail = api_client.get(f"/api/v1/batches/{batch.pk}/").json()

    assert (detail["status"], detail["placed"], detail["failed"], detail["pending"]) == ("placing", 1, 0, 2)
    assert detail["rejected_rows"] == [{"index": 3, "errors": {"sku": ["No product has the SKU B."]}}]
    listed = api_client.get("/api/v1/batches/").json()["results"][0]
    assert (listed["placed"], listed["pending"]) == (1, 2)
