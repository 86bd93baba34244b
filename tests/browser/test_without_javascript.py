"""The basic path with JavaScript switched off: plain form posts and a refreshing progress page."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, log_in, solve_captcha
from tests.orders.factories import ProductFactory


def test_a_shopper_without_javascript_adds_a_row_places_and_reaches_the_payment_page(browser, site, user):
    ProductFactory(sku="MUG", name="Mug", unit_price=Decimal("25.50"))
    user.set_password("correct-horse-battery")
    user.save()
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        log_in(page, site.url, user.username)
        expect(page.locator("#rows fieldset.row")).to_have_count(3)

        page.click("#add-row")  # a plain submit: the page comes back with one more row
        expect(page.locator("#rows fieldset.row")).to_have_count(4)
        page.fill("input[name=rows-3-goods-sku]", "MUG")
        page.fill("input[name=rows-3-goods-quantity]", "2")
        page.select_option("select[name=rows-2-kind]", "mobile")  # every field is visible without JavaScript
        page.fill("input[name=rows-2-mobile-phone]", "13800138000")
        page.select_option("select[name=rows-2-mobile-face_value]", "20")
        solve_captcha(page)
        page.click("#submit")

        page.wait_for_url(re.compile(r".*/batches/[0-9a-f-]+/$"))
        # the placing page refreshes itself (<meta refresh> in <noscript>) until the payment page is ready
        expect(page.locator("#page-title")).to_have_text("Pay for your orders", timeout=30000)
        expect(page.locator("#pay-total")).to_have_text("¥70.80")  # 51.00 + 20 × 0.99
    finally:
        context.close()
