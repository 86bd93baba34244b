import pytest

from orders.models import Batch, BatchRow, Order, Product
from payments.models import Refund
from tests.factories import UserFactory
from tests.orders.factories import BatchFactory, ProductFactory
from tests.payments.factories import PaymentFactory


@pytest.fixture
def staff_client(client, db):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


@pytest.mark.parametrize("page", ["product", "batch", "batchrow", "order"])
def test_admin_lists_and_shows_each_model(staff_client, page):
    BatchFactory(awaiting_payment=True)

    obj = {"product": Product, "batch": Batch, "batchrow": BatchRow, "order": Order}[page]._default_manager.first()

    assert staff_client.get(f"/admin/orders/{page}/").status_code == 200
    assert staff_client.get(f"/admin/orders/{page}/{obj.pk}/change/").status_code == 200


def test_admin_payment_pages(staff_client):
    payment = PaymentFactory(partially_refunded=True)

    assert staff_client.get("/admin/payments/payment/").status_code == 200
    assert staff_client.get(f"/admin/payments/payment/{payment.pk}/change/").status_code == 200


def test_admin_redrive_finishes_a_selected_batch_whose_rows_are_all_settled(staff_client, place_batch):
    ProductFactory(sku="A")
    batch = place_batch([{"kind": "goods", "sku": "A"}], finalize=False)

    response = staff_client.post("/admin/orders/batch/", {"action": "redrive", "_selected_action": [str(batch.pk)]})

    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.status == "awaiting_payment"


def test_admin_refund_action_refuses_an_unpaid_order_with_a_message(staff_client, place_batch):
    ProductFactory(sku="A")
    place_batch([{"kind": "goods", "sku": "A"}])
    order = Order.objects.get()

    response = staff_client.post(
        "/admin/orders/order/", {"action": "refund", "_selected_action": [order.pk]}, follow=True
    )

    assert "Only a paid payment can be refunded; this one is pending." in response.content.decode()
    assert not Refund.objects.exists()


@pytest.mark.parametrize("page", ["payment", "refund", "gatewayevent"])
def test_admin_payment_lists(staff_client, page):
    assert staff_client.get(f"/admin/payments/{page}/").status_code == 200


def test_a_products_kind_is_chosen_from_the_registered_types_that_sell_products(staff_client):
    from orders.models import Product

    form = staff_client.get("/admin/orders/product/add/").content.decode()
    fields = {"sku": "GEMS", "name": "Gems", "unit_price": "9.90", "stock": "", "attributes": "{}", "active": "on"}

    assert '<select name="kind"' in form
    assert '<option value="goods"' in form and '<option value="game"' in form
    assert '<option value="mobile"' not in form  # a top-up is priced by face value, not sold as a product
    refused = staff_client.post("/admin/orders/product/add/", {**fields, "kind": "gaem"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert staff_client.post("/admin/orders/product/add/", {**fields, "kind": "game"}).status_code == 302
    assert Product.objects.get(sku="GEMS").kind == "game"
