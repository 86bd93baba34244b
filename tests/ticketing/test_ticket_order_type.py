"""An order type that `orders` has never heard of (event tickets, registered by this test app) goes through
the API, placing by the real worker, the merged payment at the sandbox gateway and its own after-payment
hook, exactly as the shipped types do. Real worker, Redis, PostgreSQL, gateway page and webhook over HTTP."""

from decimal import Decimal

import pytest

from orders import registry, selectors, services
from orders.models import Batch, Order, Product
from payments.models import Payment
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory
from tests.payments.sandbox import gateway_path
from tests.ticketing.models import Ticket
from tests.ticketing.order_types import BAD_SEAT, SEAT_TAKEN


@pytest.fixture
def site(live_server, worker):
    return live_server


@pytest.fixture
def gig(db):
    return ProductFactory(sku="GIG-0612", name="Gig 12 June", kind="ticket", unit_price=Decimal("180.00"), stock=100)


def submit(api_client, rows):
    response = api_client.post("/api/v1/batches/", {"rows": rows}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def pay_at_the_gateway(client, wait_until, batch):
    path = gateway_path(Payment.objects.get(batch=batch))
    page = client.get(path).content.decode()
    client.post(path, {"decision": "pay"})
    wait_until(lambda: Batch.objects.filter(pk=batch.pk, status=Batch.Status.PAID).exists(), timeout=30, what="pay")
    return page


def test_the_ticket_type_is_registered_by_its_app_alone():
    ticket = registry.get("ticket")

    assert ticket is not None and type(ticket).__module__ == "tests.ticketing.order_types"
    assert "ticket" in [order_type.kind for order_type in registry.menu()]


def test_tickets_and_goods_are_placed_paid_once_and_the_tickets_issued_after_payment(
    site, gig, api_client, client, wait_for_batch, wait_until
):
    ProductFactory(sku="MUG", name="Mug", unit_price=Decimal("25.50"))
    rows = [
        {"kind": "goods", "sku": "MUG", "quantity": 2},
        {"kind": "ticket", "sku": "GIG-0612", "seat": "A1"},
        {"kind": "ticket", "sku": "GIG-0612", "seat": "a2"},
    ]

    accepted = submit(api_client, rows)
    batch = wait_for_batch(accepted["id"])

    assert batch.status == Batch.Status.AWAITING_PAYMENT
    assert batch.payment.amount == Decimal("411.00")  # 2 × 25.50 + 2 × 180.00, one payment
    tickets = Ticket.objects.filter(order__batch=batch).order_by("seat")
    assert [(ticket.seat, ticket.code) for ticket in tickets] == [("A1", ""), ("A2", "")]
    assert Product.objects.get(sku="GIG-0612").stock == 98

    gateway_page = pay_at_the_gateway(client, wait_until, batch)

    # the gateway listed each order as its type describes it
    assert "Gig 12 June · seat A1" in gateway_page and "Mug × 2" in gateway_page
    # the after-payment hook ran in the payment's transaction: tickets issued, their orders fulfilled
    orders = {order.row_index: order for order in Order.objects.filter(batch=batch)}
    assert orders[0].status == Order.Status.PAID
    assert orders[1].status == orders[2].status == Order.Status.FULFILLED
    assert all(ticket.code.startswith("TKT-") for ticket in Ticket.objects.filter(order__batch=batch))
    detail = api_client.get(f"/api/v1/batches/{batch.pk}/").json()
    assert [order["status"] for order in detail["orders"]] == ["paid", "fulfilled", "fulfilled"]
    assert [order["kind"] for order in detail["orders"]] == ["goods", "ticket", "ticket"]


def test_a_seat_already_sold_fails_at_placing_with_its_reason(site, gig, api_client, wait_for_batch):
    first = wait_for_batch(submit(api_client, [{"kind": "ticket", "sku": "GIG-0612", "seat": "A1"}])["id"])
    assert first.status == Batch.Status.AWAITING_PAYMENT

    second = submit(
        api_client,
        [
            {"kind": "ticket", "sku": "GIG-0612", "seat": "A1"},
            {"kind": "ticket", "sku": "GIG-0612", "seat": "B1"},
            {"kind": "ticket", "sku": "GIG-0612", "seat": "B1"},
        ],
    )
    assert second["accepted_rows"] == 3  # valid rows: only placing can know who gets a seat
    assert [(w["index"], w["field"]) for w in second["warnings"]] == [(2, "seat")]
    batch = wait_for_batch(second["id"])

    detail = api_client.get(f"/api/v1/batches/{batch.pk}/").json()
    taken = SEAT_TAKEN.format(seat="A1", event="Gig 12 June")
    assert {failure["row_index"]: failure["error"] for failure in detail["failures"]}.get(0) == taken
    assert [order["row_index"] for order in detail["orders"]] in ([1], [2])  # B1 went to one of its two rows
    assert len(detail["failures"]) == 2
    assert Decimal(detail["payment"]["amount"]) == Decimal("180.00")
    assert Ticket.objects.filter(event=gig).count() == 2  # A1 once, B1 once
    assert Product.objects.get(pk=gig.pk).stock == 98  # the refused rows took no stock


def test_an_invalid_seat_is_named_on_its_row(gig, api_client):
    response = api_client.post(
        "/api/v1/batches/", {"rows": [{"kind": "ticket", "sku": "GIG-0612", "seat": "front"}]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["rows"] == [{"index": 0, "errors": {"seat": [BAD_SEAT]}}]


def test_cancelling_an_unpaid_batch_puts_its_seats_on_sale_again(gig, user):
    batch = services.batch_submit(owner=user, rows=[{"kind": "ticket", "sku": "GIG-0612", "seat": "C3"}]).batch
    services.order_place(batch_id=batch.pk, row_index=0)
    services.batch_finalize(batch_id=batch.pk, results=selectors.batch_results_from_database(batch))

    services.batch_cancel(batch_id=batch.pk, owner=user)

    assert not Ticket.objects.exists()
    assert Product.objects.get(pk=gig.pk).stock == 100
    again = services.batch_submit(owner=user, rows=[{"kind": "ticket", "sku": "GIG-0612", "seat": "C3"}]).batch
    assert services.order_place(batch_id=again.pk, row_index=0).ok


def test_the_admin_lists_ticket_orders_as_the_type_describes_them(gig, user, client):
    batch = services.batch_submit(owner=user, rows=[{"kind": "ticket", "sku": "GIG-0612", "seat": "D4"}]).batch
    services.order_place(batch_id=batch.pk, row_index=0)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get("/admin/orders/order/").content.decode()

    assert "Gig 12 June · seat D4" in page
