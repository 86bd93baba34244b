"""A 500-row pasted batch in a real browser: it renders, validates as the shopper types and is placed.
(How long each step takes is measured by `python -m bench.checkout_page`, not asserted here.)

On a page this size, how the test waits matters. Each failed poll of a Playwright `expect` renders an
accessibility snapshot for its failure message, in the page's own thread; for an element that is not
visible (an empty error span) that snapshot covers the whole 500-row form and takes seconds on a busy
machine, during which the page's own timers (htmx's typing delay) cannot run. So every wait here is
for a concrete event that needs no polling of the page — the live validation's response — or polls a
visible element, and the error text is read once the response that carries it has been applied.
"""

import re

from playwright.sync_api import expect

from orders.models import Order
from tests.browser.conftest import solve_captcha

NUMBERS = [f"1391234{n:04d}" for n in range(1000, 1500)]


def type_phone_and_wait_for_validation(page, row_index: int, text: str) -> None:
    """Type a row's phone number and wait until the row's live validation has answered."""
    with page.expect_response(lambda response: f"/checkout/rows/{row_index}/" in response.url):
        page.fill(f"input[name=rows-{row_index}-mobile-phone]", text)


def test_a_500_row_paste_renders_validates_and_places(shopper_page):
    page = shopper_page

    page.click("#import summary")
    page.fill("textarea[name=text]", "\n".join(NUMBERS))
    page.click("#import-rows")
    expect(page.locator("#rows fieldset.row")).to_have_count(500, timeout=30000)
    expect(page.locator("#valid-count")).to_have_text("500 valid rows")
    expect(page.locator("#total")).to_have_text("¥24750.00")  # 500 × 50 × 0.99

    # a typo in row 250 is caught as it is typed, and fixed again
    type_phone_and_wait_for_validation(page, 249, "1391234")
    expect(page.locator("#valid-count")).to_have_text("499 valid rows")  # the response has been applied
    expect(page.locator("#rows-249-mobile-phone-errors")).to_contain_text("is not a valid mainland China phone number")
    type_phone_and_wait_for_validation(page, 249, "13912341249")
    expect(page.locator("#valid-count")).to_have_text("500 valid rows")
    expect(page.locator("#rows-249-mobile-phone-errors")).to_have_text("")

    solve_captcha(page)
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/batches/[0-9a-f-]+/$"), timeout=30000)
    expect(page.locator("#page-title")).to_have_text("Pay for your orders", timeout=60000)
    expect(page.locator("#orders tbody tr")).to_have_count(500)
    assert Order.objects.count() == 500
