"""Growing and correcting the formset in a real browser: one row, ten rows, a pasted list, removal, an
invalid row and the explicit choice to skip it, and the progress bar on the way to the payment page."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from orders.models import Batch
from tests.browser.conftest import DESKTOP, PHONE, screenshot, solve_captcha
from tests.orders.factories import ProductFactory

TWENTY_NUMBERS = [f"1380013{n:04d}" for n in range(8001, 8021)]


def rows(page):
    return page.locator("#rows fieldset.row")


def test_add_one_row_then_ten_rows_then_remove_one(shopper_page):
    page = shopper_page
    expect(rows(page)).to_have_count(3)

    page.click("#add-row")
    expect(rows(page)).to_have_count(4)

    page.fill("#add-count", "10")
    page.click("#add-rows")
    expect(rows(page)).to_have_count(14)
    expect(page.locator("#id_rows-TOTAL_FORMS")).to_have_value("14")

    page.fill("input[name=rows-5-goods-sku]", "KEEP-ME")
    page.click("#rows-4 button.remove")
    expect(rows(page)).to_have_count(13)
    expect(page.locator("#id_rows-TOTAL_FORMS")).to_have_value("13")
    expect(page.locator("input[name=rows-4-goods-sku]")).to_have_value("KEEP-ME")  # renumbered, not lost


def test_twenty_pasted_numbers_become_twenty_priced_rows(shopper_page):
    page = shopper_page

    page.click("#import summary")
    page.fill("textarea[name=text]", "\n".join(TWENTY_NUMBERS))
    page.select_option("select[name=mobile-default_face_value]", "30")
    page.click("#import-rows")

    expect(rows(page)).to_have_count(20)
    expect(page.locator("#valid-count")).to_have_text("20 valid rows")
    expect(page.locator("#total")).to_have_text("¥594.00")  # 20 × 30 × 0.99
    expect(page.locator("#rows-19-info")).to_contain_text("China Mobile")


def test_an_invalid_row_is_shown_and_placed_only_after_choosing_to_skip_it(shopper_page):
    page = shopper_page
    ProductFactory(sku="MUG", name="Mug", unit_price=Decimal("25.50"))
    page.fill("input[name=rows-0-goods-sku]", "MUG")
    page.select_option("select[name=rows-1-kind]", "mobile")
    page.fill("input[name=rows-1-mobile-phone]", "010 1234 5678")  # a landline
    page.select_option("select[name=rows-1-mobile-face_value]", "50")
    expect(page.locator("#rows-1-mobile-phone-errors")).to_contain_text("is not a mobile number")
    expect(page.locator("#invalid-count")).to_have_text("1 with problems")

    solve_captcha(page)
    page.click("#submit")

    expect(page.locator("#invalid-notice")).to_contain_text("1 row has a problem")
    assert not Batch.objects.exists()  # nothing placed until the shopper chooses
    page.click("#submit-skip")

    page.wait_for_url(re.compile(r".*/batches/[0-9a-f-]+/$"))
    expect(page.locator("#page-title")).to_have_text("Pay for your orders", timeout=30000)
    expect(page.locator("#skipped")).to_contain_text("is not a mobile number")
    batch = Batch.objects.get()
    assert (batch.row_count, batch.accepted_rows) == (2, 1)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_progress_bar_moves_on_to_the_payment_page_and_on_to_the_result(open_page, paused_worker, viewport):
    page = open_page(viewport)
    page.click("#import summary")
    page.fill("textarea[name=text]", "\n".join(TWENTY_NUMBERS))
    page.click("#import-rows")
    expect(page.locator("#valid-count")).to_have_text("20 valid rows")
    screenshot(page, "checkout")
    solve_captcha(page)
    page.click("#submit")

    # the worker is held back: the page shows the batch placing
    expect(page.locator("#page-title")).to_have_text("Placing your orders…")
    expect(page.locator("#progress-counts")).to_contain_text("0 placed · 0 failed · 20 pending of 20")
    expect(page.locator("[role=progressbar]")).to_be_visible()
    screenshot(page, "progress")

    paused_worker()  # let it go: the page follows without a reload
    expect(page.locator("#page-title")).to_have_text("Pay for your orders", timeout=30000)
    expect(page.locator("#orders tbody tr")).to_have_count(20)
    expect(page.locator("#pay-total")).to_have_text("¥990.00")
    screenshot(page, "payment")

    page.click("#pay")
    expect(page.locator("#methods")).to_be_visible()
    screenshot(page, "methods")
    page.click("#method-sandbox-page")
    screenshot(page, "gateway")
    page.click("#pay")
    expect(page.locator("#page-title")).to_have_text("Paid — thank you", timeout=30000)
    expect(page.locator("#order-19")).to_have_attribute("data-status", "fulfilled", timeout=30000)
    screenshot(page, "result")
