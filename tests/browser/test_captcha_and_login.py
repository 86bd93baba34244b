"""The captcha picture and the lockout message in a real browser."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, solve_captcha
from tests.orders.factories import ProductFactory


def loaded(image) -> bool:
    return image.evaluate("img => img.complete && img.naturalWidth > 0")


def test_the_captcha_picture_loads_and_a_new_one_replaces_it(shopper_page):
    page = shopper_page
    ProductFactory(sku="MUG-RED", unit_price=Decimal("25.50"))
    image = page.locator("#captcha-image")
    first = image.get_attribute("src")
    page.wait_for_function("document.querySelector('#captcha-image').complete")
    assert loaded(image)

    page.click("#captcha-refresh")

    expect(image).not_to_have_attribute("src", first)
    page.wait_for_function("document.querySelector('#captcha-image').complete")
    assert loaded(image)
    page.fill("input[name=rows-0-goods-sku]", "MUG-RED")
    expect(page.locator("#valid-count")).to_have_text("1 valid row")
    solve_captcha(page)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/batches/[0-9a-f-]+/$"))


def test_a_locked_out_login_says_why(browser, site, user, settings):
    settings.LOGIN_SLOW_AFTER = 1000  # straight to the lockout
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    for attempt in range(settings.LOGIN_FAILURE_LIMIT):
        page.goto(f"{site.url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", f"wrong-{attempt}")
        page.click("#login")

    expect(page.locator("#locked-out")).to_contain_text("locked for 15 minutes")
    context.close()
