"""What shoppers ran into (issue "Everyday use"): carrier and region before a face value is chosen, a pasted number
that is not a SKU, why a row was refunded, net paid amounts, names instead of kind codes, reasons in the reader's
language, and the language a batch was submitted in."""

import re
from decimal import Decimal

import pytest

from orders.models import Batch
from tests.orders.factories import ProductFactory
from tests.orders.flows import batch_paid, batch_placed, refunds_confirmed, top_ups_run
from tests.payments.sandbox import gateway_path
from tests.web.test_checkout import form_data


@pytest.fixture(autouse=True)
def catalogue(db, carrier_discounts):
    ProductFactory(sku="TSHIRT-M", name="T-shirt M", unit_price=Decimal("59.00"))


def row_info(html: str, index: int) -> str:
    match = re.search(rf'<span class="row-info" id="rows-{index}-info"[^>]*>(.*?)</span>(?=\s*$|\s*<)', html, re.S)
    assert match, f"no info of row {index}"
    return match.group(1)


def test_carrier_and_region_show_as_soon_as_the_number_is_valid(shopper):
    rows = [{"kind": "mobile", "phone": "13800138000"}]  # no face value yet

    html = shopper.post("/checkout/rows/0/", form_data(rows), HTTP_HX_REQUEST="true").content.decode()

    assert '<span class="note">China Mobile · Beijing</span>' in html
    assert 'id="rows-0-mobile-face_value-errors" hx-swap-oob="true">This field is required.' in html
    assert "¥" not in row_info(html, 0)  # no price until there is a face value


def test_a_pasted_number_that_is_no_sku_stays_a_phone_row_with_its_error(shopper):
    ProductFactory(sku="90210", name="Numbered poster")  # a SKU made of digits is still that product

    page = shopper.post("/checkout/", form_data([{"kind": "goods"}], **{"import": "1", "text": "12345\n90210,2\n"}))

    html = page.content.decode()
    assert 'name="rows-0-mobile-phone" value="12345"' in html
    assert "12345 is not a valid mainland China phone number." in html
    assert "No product has the SKU 12345" not in html
    assert 'name="rows-1-goods-sku" value="90210"' in html


@pytest.fixture
def refunded_batch(user):
    batch = batch_placed(
        user,
        [
            {"kind": "goods", "sku": "TSHIRT-M", "quantity": 2},
            {"kind": "mobile", "phone": "13800138000", "face_value": "50"},
            {"kind": "mobile", "phone": "13800000000", "face_value": "20"},  # refused upstream: refunded
        ],
    )
    batch_paid(batch)
    top_ups_run(batch)
    refunds_confirmed(batch)
    return batch


def test_the_result_page_says_why_a_row_was_refunded(shopper, refunded_batch):
    html = shopper.get(f"/batches/{refunded_batch.pk}/").content.decode()

    assert re.search(
        r'id="order-2-reason">Refunded: The top-up provider could not top up this account, after several attempts.<',
        html,
    )
    assert 'id="order-1-reason"' not in html
    assert "Refunded: ¥19.80 · Net paid: ¥167.50" in html


def test_my_orders_shows_what_was_paid_refunded_and_kept(shopper, refunded_batch):
    html = shopper.get("/batches/").content.decode()

    cell = re.search(rf'id="total-{refunded_batch.pk}">(.*?)</td>', html, re.S).group(1)
    assert '<span class="net">¥167.50</span>' in cell
    assert "paid ¥187.30, ¥19.80 refunded" in cell


def test_pages_name_kinds_never_by_their_code(shopper, user, client):
    batch = batch_placed(
        user, [{"kind": "goods", "sku": "TSHIRT-M"}, {"kind": "mobile", "phone": "13800138000", "face_value": "50"}]
    )

    batch_page = shopper.get(f"/batches/{batch.pk}/").content.decode()
    gateway_page = client.get(gateway_path(batch.payment)).content.decode()

    assert '<span class="kind">Goods</span>' in batch_page
    assert '<span class="kind">Mobile top-up</span>' in batch_page
    assert "Goods: T-shirt M × 1" in gateway_page
    assert "Mobile top-up: 13800138000 · ¥50 · China Mobile · Beijing" in gateway_page
    for page in (batch_page, gateway_page):
        assert "· goods" not in page and "· mobile" not in page


def test_skipped_rows_read_in_the_language_of_whoever_looks(shopper, user):
    rows = [{"kind": "goods", "sku": "TSHIRT-M"}, {"kind": "mobile", "phone": "12345", "face_value": "50"}]
    batch = batch_placed(user, rows, skip_invalid=True)  # submitted in English

    english = shopper.get(f"/batches/{batch.pk}/").content.decode()
    chinese = shopper.get(f"/batches/{batch.pk}/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()

    assert "12345 is not a valid mainland China phone number." in english
    assert "12345 不是有效的中国大陆电话号码。" in chinese
    assert "not a valid" not in chinese


def test_the_batch_remembers_the_language_it_was_submitted_in(shopper, api_client):
    chinese_api = api_client.post(
        "/api/v1/batches/",
        {"rows": [{"kind": "goods", "sku": "TSHIRT-M"}]},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9",
    )
    english_api = api_client.post("/api/v1/batches/", {"rows": [{"kind": "goods", "sku": "TSHIRT-M"}]}, format="json")
    shopper.post("/i18n/setlang/", {"language": "zh-hans", "next": "/checkout/"})
    shopper.get("/checkout/")
    from tests.web.test_checkout import captcha_answer

    web = shopper.post(
        "/checkout/",
        form_data([{"kind": "goods", "sku": "TSHIRT-M"}], submit="1", captcha=captcha_answer(shopper)),
    )

    assert Batch.objects.get(pk=chinese_api.json()["id"]).language == "zh-hans"
    assert Batch.objects.get(pk=english_api.json()["id"]).language == "en"
    web_batch = Batch.objects.get(source="web")
    assert web.status_code == 302 and web_batch.language == "zh-hans"
