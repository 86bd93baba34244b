"""The Chinese interface, as a browser set to Chinese gets it."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, screenshot, solve_captcha


def test_a_chinese_browser_gets_the_chinese_checkout_and_payment_page(open_page):
    page = open_page(PHONE, locale="zh-CN")

    expect(page.locator("h1")).to_have_text("新建订单")
    expect(page.locator("#submit")).to_have_text("提交订单，一次支付")
    page.select_option("select[name=rows-0-kind]", "mobile")
    page.fill("input[name=rows-0-mobile-phone]", "18612345678")
    page.select_option("select[name=rows-0-mobile-face_value]", "100")
    expect(page.locator("#rows-0-info")).to_contain_text("中国联通 · 北京市")
    expect(page.locator("#rows-0-info")).to_contain_text("¥98.50")
    page.select_option("select[name=rows-1-kind]", "mobile")
    page.fill("input[name=rows-1-mobile-phone]", "010 1234 5678")  # a landline
    expect(page.locator("#rows-1-mobile-phone-errors")).to_contain_text("不是手机号码")
    screenshot(page, "checkout-zh")
    page.fill("input[name=rows-1-mobile-phone]", "")
    page.select_option("select[name=rows-1-kind]", "goods")

    solve_captcha(page)
    page.click("#submit")

    page.wait_for_url(re.compile(r".*/batches/[0-9a-f-]+/$"))
    expect(page.locator("#page-title")).to_have_text("支付订单", timeout=30000)
    expect(page.locator("#pay-total")).to_have_text("¥98.50")
    screenshot(page, "payment-zh")


def test_the_language_switch_changes_the_interface(shopper_page):
    page = shopper_page
    expect(page.locator("h1")).to_have_text("New order")

    page.select_option("#language", "zh-hans")

    expect(page.locator("h1")).to_have_text("新建订单")
    expect(page.locator("#language")).to_have_value("zh-hans")
