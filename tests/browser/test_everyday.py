"""What a shopper ran into in everyday use, in a real browser: carrier and region before a face value, a pasted
number that is no SKU, why a row was refunded, net amounts in My orders, kind names on the gateway's page,
skipped rows in the reader's language, and status labels that stay on one line on a phone."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, screenshot, solve_captcha
from tests.orders.factories import ProductFactory


def test_carrier_and_region_show_before_a_face_value_is_chosen(shopper_page):
    page = shopper_page

    page.select_option("select[name=rows-0-kind]", "mobile")
    page.fill("input[name=rows-0-mobile-phone]", "13800138000")

    expect(page.locator("#rows-0-info")).to_contain_text("China Mobile · Beijing")
    expect(page.locator("select[name=rows-0-mobile-face_value]")).to_have_value("")
    page.select_option("select[name=rows-0-mobile-face_value]", "50")
    expect(page.locator("#rows-0-info")).to_contain_text("¥49.50")


def test_a_pasted_number_that_is_no_sku_stays_a_phone_row(shopper_page):
    page = shopper_page

    page.click("#import summary")
    page.fill("textarea[name=text]", "12345\n13800138000")
    page.click("#import-rows")

    expect(page.locator("select[name=rows-0-kind]")).to_have_value("mobile")
    expect(page.locator("#rows-0-mobile-phone-errors")).to_contain_text(
        "12345 is not a valid mainland China phone number."
    )
    expect(page.locator("#rows-1-info")).to_contain_text("China Mobile · Beijing")


def statuses_on_one_line(page) -> bool:
    return page.eval_on_selector_all(
        ".status",
        """elements => elements.every(element => {
            const style = getComputedStyle(element);
            return style.whiteSpace === "nowrap" && element.offsetHeight < 2 * parseFloat(style.fontSize) * 1.5;
        })""",
    )


def test_on_a_phone_the_result_says_why_a_row_was_refunded_and_my_orders_what_was_kept(open_page):
    page = open_page(PHONE)
    ProductFactory(sku="TSHIRT-M", name="T-shirt M", unit_price=Decimal("59.00"))
    page.select_option("select[name=rows-0-kind]", "mobile")
    page.fill("input[name=rows-0-mobile-phone]", "13800138000")
    page.select_option("select[name=rows-0-mobile-face_value]", "50")
    page.select_option("select[name=rows-1-kind]", "mobile")
    page.fill("input[name=rows-1-mobile-phone]", "13900000000")  # ...0000: the upstream refuses it
    page.select_option("select[name=rows-1-mobile-face_value]", "20")
    page.fill("input[name=rows-2-goods-sku]", "TSHIRT-M")
    expect(page.locator("#valid-count")).to_have_text("3 valid rows")
    solve_captcha(page)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/batches/[0-9a-f-]+/$"))
    expect(page.locator("#page-title")).to_have_text("Pay for your orders", timeout=30000)
    expect(page.locator("#order-0")).to_contain_text("Mobile top-up")
    expect(page.locator("#order-2")).to_contain_text("Goods")
    assert statuses_on_one_line(page)

    page.click("#pay")
    page.click("#method-sandbox-page")
    # the gateway lists each order by its kind's name, never its code
    expect(page.locator("table")).to_contain_text("Mobile top-up: 13800138000 · ¥50")
    expect(page.locator("table")).to_contain_text("Goods: T-shirt M × 1")
    expect(page.locator("table")).not_to_contain_text("· mobile")
    page.click("#pay")

    expect(page.locator("#page-title")).to_have_text("Paid — thank you", timeout=30000)
    expect(page.locator("#order-1")).to_have_attribute("data-status", "refunded", timeout=30000)
    expect(page.locator("#order-1-reason")).to_have_text(
        "Refunded: The top-up provider could not top up this account, after several attempts."
    )
    expect(page.locator("#refunded")).to_have_text("Refunded: ¥19.80 · Net paid: ¥108.50")
    assert statuses_on_one_line(page)
    screenshot(page, "result-refunded")

    page.click("text=My orders")
    total = page.locator("#batches td.num").first
    expect(total).to_contain_text("¥108.50")
    expect(total).to_contain_text("paid ¥128.30, ¥19.80 refunded")
    assert statuses_on_one_line(page)
    screenshot(page, "orders")


def test_a_skipped_row_reads_in_the_language_the_page_is_read_in(shopper_page):
    page = shopper_page
    ProductFactory(sku="MUG", name="Mug", unit_price=Decimal("25.50"))
    page.fill("input[name=rows-0-goods-sku]", "MUG")
    page.fill("input[name=rows-1-goods-sku]", "NO-SUCH-THING")
    expect(page.locator("#invalid-count")).to_have_text("1 with problems")
    solve_captcha(page)
    page.click("#submit")
    page.click("#submit-skip")
    page.wait_for_url(re.compile(r".*/batches/[0-9a-f-]+/$"))
    expect(page.locator("#skipped")).to_contain_text("No product has the SKU NO-SUCH-THING.")

    page.select_option("#language", "zh-hans")

    expect(page.locator("#skipped")).to_contain_text("没有商品编号为 NO-SUCH-THING 的商品。")
    expect(page.locator("#skipped")).not_to_contain_text("No product has")
