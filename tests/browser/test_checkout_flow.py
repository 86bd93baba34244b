"""The shopper's whole journey in a real browser: rows, live validation, captcha, progress, merged
payment at the sandbox gateway, and the result page that follows paid and fulfilment status live."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from tests.browser.conftest import solve_captcha
from tests.orders.factories import ProductFactory


def test_mobile_rows_are_paid_once_and_a_failing_number_is_refunded(shopper_page, site):
    page = shopper_page
    ProductFactory(sku="TSHIRT-M", name="T-shirt M", unit_price=Decimal("59.00"))

    # one row of each: a phone that tops up, a phone the upstream refuses (…0000), and goods
    page.select_option("#rows-0 select[name=rows-0-kind]", "mobile")
    page.fill("input[name=rows-0-mobile-phone]", "13800138000")
    page.select_option("select[name=rows-0-mobile-face_value]", "50")
    expect(page.locator("#rows-0-info")).to_contain_text("China Mobile · Beijing")
    expect(page.locator("#rows-0-info")).to_contain_text("¥49.50")
    page.select_option("select[name=rows-1-kind]", "mobile")
    page.fill("input[name=rows-1-mobile-phone]", "13900000000")
    page.select_option("select[name=rows-1-mobile-face_value]", "20")
    page.fill("input[name=rows-2-goods-sku]", "TSHIRT-M")
    page.fill("input[name=rows-2-goods-quantity]", "2")
    expect(page.locator("#valid-count")).to_have_text("3 valid rows")
    expect(page.locator("#total")).to_have_text("¥187.30")  # 49.50 + 19.80 + 118.00

    solve_captcha(page)
    page.click("#submit")

    page.wait_for_url(re.compile(r".*/batches/[0-9a-f-]+/$"))
    expect(page.locator("#page-title")).to_have_text("Pay for your orders", timeout=30000)
    expect(page.locator("#pay-total")).to_have_text("¥187.30")
    page.click("#pay")
    page.click("#method-sandbox-page")  # the way to pay on offer where no real rail is configured
    expect(page.locator("#total")).to_contain_text("187.30 CNY")  # the gateway's own page
    page.click("#pay")

    expect(page.locator("#page-title")).to_have_text("Paid — thank you", timeout=30000)
    expect(page.locator("#order-0")).to_have_attribute("data-status", "fulfilled", timeout=30000)
    expect(page.locator("#order-1")).to_have_attribute("data-status", "refunded", timeout=30000)
    expect(page.locator("#order-2")).to_have_attribute("data-status", "paid")
    expect(page.locator("#refunded")).to_contain_text("¥19.80")
