"""Paying with WeChat Pay in a real browser, against the fake WeChat Pay (tests/payments/fakes/wechat.py): the
payment page offers the configured rails' methods, choosing WeChat Pay shows the QR code of the rail's code_url,
and once the fake reports it paid (its notification reaches the live server's webhook) the page moves on to the
result by itself."""

from decimal import Decimal

from playwright.sync_api import expect

from payments.models import PaymentAttempt
from tests.browser.conftest import screenshot
from tests.orders.factories import ProductFactory
from tests.payments.fakes.alipay import alipay_gateway, fake_alipay  # noqa: F401 - fixtures
from tests.payments.fakes.wechat import wechat_pay_fake


def test_choosing_wechat_pay_shows_its_qr_code_and_the_page_follows_the_payment(
    shopper_page,
    site,
    place_batch,
    settings,
    fake_alipay,  # noqa: F811 - the fixture imported above
):
    ProductFactory(sku="MUG", name="Mug", unit_price=Decimal("25.50"))
    batch = place_batch([{"kind": "goods", "sku": "MUG", "quantity": 2}, {"kind": "goods", "sku": "MUG"}])
    page = shopper_page
    with wechat_pay_fake(settings) as fake:
        page.goto(f"{site.url}/batches/{batch.pk}/")
        page.click("#pay")

        methods = page.locator("#methods button")
        expect(methods).to_have_count(2)  # each configured rail's desktop method; no sandbox
        expect(page.locator("#method-wechat-native")).to_be_visible()
        expect(page.locator("#method-alipay-page")).to_be_visible()
        screenshot(page, "pay-methods")
        page.click("#method-wechat-native")

        expect(page.locator("svg#qr-code")).to_be_visible()
        expect(page.locator("#waiting")).to_be_visible()
        screenshot(page, "wechat-qr")
        attempt = PaymentAttempt.objects.get(payment__batch=batch)
        assert attempt.provider == "wechat" and attempt.qr_text == fake.orders[attempt.reference].pay_url

        # The phone that scanned the code pays; WeChat Pay notifies the shop.
        assert fake.mark_paid(attempt.reference).post().status_code == 204

        expect(page.locator("#page-title")).to_have_text("Paid — thank you", timeout=30000)
        assert page.url.endswith(f"/batches/{batch.pk}/")
        screenshot(page, "wechat-paid")
