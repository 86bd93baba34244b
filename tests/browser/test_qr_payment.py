"""Paying by QR code in a real browser, on the tests' own rail (tests/testrail): the payment page offers the
configured rail's methods, choosing the QR one shows the code, and once the phone that scanned it has paid
the page moves on to the result by itself."""

from decimal import Decimal

from playwright.sync_api import expect

from payments.models import PaymentAttempt
from payments.sandbox import gateway
from tests.orders.factories import ProductFactory
from tests.payments.sandbox import charge_of


def test_choosing_the_qr_method_shows_the_code_and_the_page_follows_the_payment(
    shopper_page, site, place_batch, settings
):
    settings.TEST_RAIL_ENABLED = True
    ProductFactory(sku="MUG", name="Mug", unit_price=Decimal("25.50"))
    batch = place_batch([{"kind": "goods", "sku": "MUG", "quantity": 2}])
    page = shopper_page
    page.goto(f"{site.url}/batches/{batch.pk}/")

    page.click("#pay")
    expect(page.locator("#methods button")).to_have_count(1)  # the configured rail's desktop method alone
    page.click("#method-qrtest-qr")

    expect(page.locator("svg#qr-code")).to_be_visible()
    expect(page.locator("#waiting")).to_be_visible()
    attempt = PaymentAttempt.objects.get(payment__batch=batch)
    gateway.charge_decide(charge_reference=charge_of(attempt), pay=True)  # the phone that scanned it pays

    expect(page.locator("#page-title")).to_have_text("Paid — thank you", timeout=30000)
    assert page.url.endswith(f"/batches/{batch.pk}/")
