"""An order type the product code does not know (event tickets, from the test app tests/ticketing) in the
real checkout: offered in the menu, its own inputs shown, validated as the shopper types, placed, paid at
the sandbox gateway and issued by its after-payment hook — the whole journey, in a real browser."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from tests.browser.conftest import solve_captcha
from tests.orders.factories import ProductFactory
from tests.ticketing.order_types import BAD_SEAT


def test_a_shopper_buys_a_ticket_with_a_seat_and_goods_and_gets_the_ticket_after_paying(shopper_page):
    page = shopper_page
    ProductFactory(sku="GIG-0612", name="Gig 12 June", kind="ticket", unit_price=Decimal("180.00"), stock=100)
    ProductFactory(sku="MUG", name="Mug", unit_price=Decimal("25.50"))

    # the ticket kind is on offer; its inputs show only once it is chosen
    expect(page.locator("select[name=rows-0-kind] option[value=ticket]")).to_have_text("Event ticket")
    expect(page.locator("input[name=rows-0-ticket-seat]")).to_be_hidden()
    page.select_option("select[name=rows-0-kind]", "ticket")
    expect(page.locator("input[name=rows-0-ticket-seat]")).to_be_visible()
    expect(page.locator("input[name=rows-0-goods-sku]")).to_be_hidden()

    # validated as the shopper types
    page.fill("input[name=rows-0-ticket-sku]", "GIG-0612")
    page.fill("input[name=rows-0-ticket-seat]", "front")
    expect(page.locator("#rows-0-ticket-seat-errors")).to_have_text(BAD_SEAT)
    expect(page.locator("#invalid-count")).to_have_text("1 with problems")
    page.fill("input[name=rows-0-ticket-seat]", "b7")
    expect(page.locator("#rows-0-ticket-seat-errors")).to_have_text("")
    expect(page.locator("#rows-0-info")).to_contain_text("Gig 12 June")
    expect(page.locator("#rows-0-info")).to_contain_text("¥180.00")
    page.fill("input[name=rows-1-goods-sku]", "MUG")
    page.fill("input[name=rows-1-goods-quantity]", "2")
    expect(page.locator("#valid-count")).to_have_text("2 valid rows")
    expect(page.locator("#total")).to_have_text("¥231.00")

    solve_captcha(page)
    page.click("#submit")

    page.wait_for_url(re.compile(r".*/batches/[0-9a-f-]+/$"))
    expect(page.locator("#page-title")).to_have_text("Pay for your orders", timeout=30000)
    expect(page.locator("#order-0")).to_contain_text("Gig 12 June · seat B7")
    expect(page.locator("#order-1")).to_contain_text("Mug × 2")
    expect(page.locator("#pay-total")).to_have_text("¥231.00")

    page.click("#pay")
    page.click("#method-sandbox-page")
    expect(page.locator("table")).to_contain_text("Gig 12 June · seat B7")  # the gateway's own page
    page.click("#pay")

    expect(page.locator("#page-title")).to_have_text("Paid — thank you", timeout=30000)
    expect(page.locator("#order-0")).to_have_attribute("data-status", "fulfilled")
    expect(page.locator("#order-0")).to_contain_text(re.compile(r"ticket TKT-[0-9A-F]{8}"))
    expect(page.locator("#order-1")).to_have_attribute("data-status", "paid")
