from decimal import Decimal

import pytest

from orders import services
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory


@pytest.fixture
def placed(place_batch):
    ProductFactory(sku="MUG", name="Mug", unit_price=Decimal("25.50"), stock=10)
    return place_batch([{"kind": "goods", "sku": "MUG", "quantity": 2}])


def test_a_placing_batch_shows_progress_and_polls(shopper, place_batch):
    ProductFactory(sku="MUG")
    batch = place_batch([{"kind": "goods", "sku": "MUG"}] * 4, place=[0])

    html = shopper.get(f"/batches/{batch.pk}/").content.decode()

    assert "1 placed · 0 failed · 3 pending of 4" in html
    assert 'aria-valuenow="25"' in html
    assert 'hx-trigger="every 1s"' in html


def test_the_live_partial_answers_htmx_alone(shopper, placed):
    response = shopper.get(f"/batches/{placed.pk}/", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="batch"')
    assert "Pay for your orders" in html
    assert response["Vary"].count("HX-Request") == 1


def test_the_payment_page_shows_one_total_and_the_gateway_link(shopper, placed):
    html = shopper.get(f"/batches/{placed.pk}/").content.decode()

    assert 'id="pay-total">¥51.00' in html
    assert f'/payments/pay/{placed.payment.reference}/"' in html
    assert "every 1s" not in html  # nothing to wait for until the shopper pays


def test_cancel_from_the_page_releases_the_orders(shopper, placed):
    response = shopper.post(f"/batches/{placed.pk}/cancel/", follow=True)

    assert "The batch was cancelled" in response.content.decode()
    placed.refresh_from_db()
    assert placed.status == "cancelled"


def test_my_orders_lists_my_batches_newest_first_and_not_others(shopper, placed, user):
    other = UserFactory()
    ProductFactory(sku="PEN")
    services.batch_submit(owner=other, rows=[{"kind": "goods", "sku": "PEN"}])
    newer = services.batch_submit(owner=user, rows=[{"kind": "goods", "sku": "PEN"}]).batch

    html = shopper.get("/batches/").content.decode()

    assert html.count('<tr><td><a href="/batches/') == 2
    assert html.index(str(newer.pk)) < html.index(str(placed.pk))
    assert "¥51.00" in html


def test_another_shoppers_batch_is_404(shopper, db):
    ProductFactory(sku="PEN")
    theirs = services.batch_submit(owner=UserFactory(), rows=[{"kind": "goods", "sku": "PEN"}]).batch

    assert shopper.get(f"/batches/{theirs.pk}/").status_code == 404
    assert shopper.post(f"/batches/{theirs.pk}/cancel/").status_code == 404


def test_returning_from_the_gateway_waits_for_the_notification(client, shopper, placed):
    response = shopper.get(f"/payments/return/{placed.payment.reference}/")

    assert response["Location"] == f"/batches/{placed.pk}/?returned=1"
    html = shopper.get(response["Location"]).content.decode()
    assert "Waiting for the payment to be confirmed" in html and "every 1s" in html


def test_sign_up_logs_the_new_shopper_in(client, db):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )

    assert response["Location"] == "/checkout/"
    assert client.get("/checkout/").status_code == 200
    # receipts go to the address given at sign-up
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.get(username="newbie").email == "newbie@example.com"


def test_sign_up_asks_for_the_address_receipts_go_to(client, db):
    response = client.post(
        "/accounts/signup/",
        {"username": "newbie", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
    )

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_sign_up_with_mismatched_passwords_names_the_field(client, db):
    response = client.post(
        "/accounts/signup/", {"username": "newbie", "password1": "a-long-pass-phrase-9", "password2": "x"}
    )

    assert response.status_code == 400
    assert "The two password fields didn’t match." in response.content.decode()


def test_a_declined_attempt_leaves_the_batch_payable_and_says_so(shopper, placed):
    from payments.models import PaymentAttempt
    from tests.payments.factories import PaymentAttemptFactory

    PaymentAttemptFactory(payment=placed.payment, status=PaymentAttempt.Status.DECLINED)

    html = shopper.get(f"/batches/{placed.pk}/?returned=1").content.decode()

    assert "Pay for your orders" in html and "Payment declined — try again." in html
    assert f'/payments/pay/{placed.payment.reference}/"' in html  # the pay button, for another try
    assert "Waiting for the payment to be confirmed" not in html and "every 1s" not in html
