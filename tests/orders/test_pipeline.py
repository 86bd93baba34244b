"""The placing pipeline end to end: API → rows → one task per row → chord → count check → one payment.

Every test here runs against the real worker process, Redis and PostgreSQL, and again with RabbitMQ as the broker.
"""

from decimal import Decimal

import pytest

from orders import outbox
from orders.models import Batch, BatchRow, Order, OutboxMessage, Product
from payments.models import Payment
from tests.orders.factories import ProductFactory

pytestmark = pytest.mark.every_broker


def goods(sku, quantity=1, **extra):
    return {"kind": "goods", "sku": sku, "quantity": quantity, **extra}


def fifty_rows_five_invalid():
    rows = [goods("PEN", quantity=(i % 3) + 1) for i in range(50)]
    rows[3] = goods("NO-SUCH-SKU")
    rows[11] = goods("PEN", quantity=0)
    rows[20] = {"kind": "goods"}
    rows[33] = {"kind": "spaceship", "sku": "PEN"}
    rows[49] = goods("PEN", quantity="many")
    return rows


def test_invalid_rows_without_skip_are_refused_and_nothing_is_created(worker, api_client):
    ProductFactory(sku="PEN", unit_price=Decimal("3.20"))

    response = api_client.post("/api/v1/batches/", {"rows": fifty_rows_five_invalid()}, format="json")

    assert response.status_code == 400
    errors = {row["index"]: row["errors"] for row in response.json()["rows"]}
    assert errors == {
        3: {"sku": ["No product has the SKU NO-SUCH-SKU."]},
        11: {"quantity": ["Must be at least 1."]},
        20: {"sku": ["This field is required."]},
        33: {"kind": ["Unknown kind spaceship; expected one of: game, goods, mobile, ticket."]},
        49: {"quantity": ["Must be a whole number."]},
    }
    assert not Batch.objects.exists() and not BatchRow.objects.exists() and not Order.objects.exists()


def test_skip_invalid_places_the_45_valid_rows_and_pays_once_for_their_sum(worker, api_client, wait_for_batch):
    ProductFactory(sku="PEN", unit_price=Decimal("3.20"))

    response = api_client.post(
        "/api/v1/batches/", {"rows": fifty_rows_five_invalid(), "skip_invalid": True}, format="json"
    )

    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == f"/api/v1/batches/{body['id']}/"
    assert (body["status"], body["row_count"], body["accepted_rows"]) == ("placing", 50, 45)
    assert [row["index"] for row in body["rejected_rows"]] == [3, 11, 20, 33, 49]

    batch = wait_for_batch(body["id"])
    orders = Order.objects.filter(batch=batch)
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    assert orders.count() == 45
    assert sorted(orders.values_list("row_index", flat=True)) == [i for i in range(50) if i not in (3, 11, 20, 33, 49)]
    payment = Payment.objects.get()
    assert payment.batch == batch
    assert (
        payment.amount
        == sum(order.amount for order in orders)
        == Decimal("3.20") * sum((i % 3) + 1 for i in range(50) if i not in (3, 11, 20, 33, 49))
    )
    assert payment.allocations.count() == 45

    detail = api_client.get(body["url"]).json()
    assert (detail["placed"], detail["failed"], detail["pending"]) == (45, 0, 0)
    assert detail["payment"]["amount"] == str(payment.amount)


def test_rows_refused_at_placing_are_failures_and_the_payment_covers_only_placed_orders(
    worker, api_client, wait_for_batch
):
    ProductFactory(sku="LAMP", unit_price=Decimal("40.00"), stock=1)
    ProductFactory(sku="VASE", unit_price=Decimal("15.00"))
    rows = [goods("LAMP"), goods("VASE"), goods("LAMP"), goods("LAMP"), goods("VASE", quantity=2)]

    # the VASE goes off sale between acceptance and placing: the check at placing catches it
    batch_id = _submit_then(api_client, rows, lambda: Product.objects.filter(sku="VASE").update(active=False))

    batch = wait_for_batch(batch_id)
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    failures = dict(batch.rows.filter(outcome="failed").values_list("row_index", "failure_code"))
    # three rows raced for the last lamp: whichever got it, the other two are out of stock
    placed = Order.objects.get(batch=batch)
    assert placed.row_index in (0, 2, 3)
    assert failures == {1: "inactive", 4: "inactive"} | {i: "out_of_stock" for i in (0, 2, 3) if i != placed.row_index}
    assert batch.payment.amount == placed.amount == Decimal("40.00")
    assert Product.objects.get(sku="LAMP").stock == 0


def test_a_batch_whose_every_row_fails_at_placing_fails_without_payment(worker, api_client, wait_for_batch):
    ProductFactory(sku="RARE", stock=0)

    response = api_client.post("/api/v1/batches/", {"rows": [goods("RARE"), goods("RARE")]}, format="json")

    batch = wait_for_batch(response.json()["id"])
    assert batch.status == Batch.Status.FAILED
    assert not Payment.objects.exists()
    detail = api_client.get(f"/api/v1/batches/{batch.pk}/").json()
    assert detail["payment"] is None
    assert [(f["row_index"], f["code"]) for f in detail["failures"]] == [(0, "out_of_stock"), (1, "out_of_stock")]


def _submit_then(api_client, rows, change):
    """Submit a batch whose placing starts only after `change` has been made and committed."""
    from django.db import transaction

    with transaction.atomic():
        response = api_client.post("/api/v1/batches/", {"rows": rows}, format="json")
        assert response.status_code == 202, response.json()
        change()
    return response.json()["id"]


def test_a_batch_submitted_while_the_broker_is_down_is_accepted_and_placed_once_it_is_back(
    worker, broker, api_client, celery_on, monkeypatch, wait_until, wait_for_batch
):
    ProductFactory(sku="PEN", unit_price=Decimal("3.20"))
    # Restored when the test ends: a failed publish makes this process leave publishing to the sweeper for a while.
    monkeypatch.setattr(outbox, "_broker_down_until", 0.0)
    # given: the broker cannot be reached (nothing listens on port 1)
    unreachable = "amqp://guest:guest@127.0.0.1:1//" if broker.kind == "rabbitmq" else "redis://127.0.0.1:1/0"
    celery_on(unreachable, result_backend=broker.result_backend)

    # when: a shopper submits a batch
    response = api_client.post("/api/v1/batches/", {"rows": [goods("PEN")] * 3}, format="json")

    # then: accepted at once, its dispatch kept in the outbox; placed once the broker is back and the sweeper runs
    assert response.status_code == 202
    assert OutboxMessage.objects.get(published_at__isnull=True).attempts == 1
    celery_on(broker.url, result_backend=broker.result_backend)
    wait_until(lambda: outbox.publish_due() == 1, timeout=10, what="the sweeper to publish the dispatch")
    batch = wait_for_batch(response.json()["id"])
    assert batch.status == Batch.Status.AWAITING_PAYMENT
    assert Order.objects.filter(batch=batch).count() == 3
