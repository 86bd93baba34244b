"""The checkout page through Django's test client: every action without JavaScript, and the htmx partials."""

import re
from decimal import Decimal

import pytest

from orders.models import Batch
from orders.web import importing
from tests.conftest import CAPTCHA_TEST_ANSWER
from tests.orders.factories import ProductFactory
from tests.recharge.factories import game_product


@pytest.fixture(autouse=True)
def catalogue(db):
    ProductFactory(sku="TSHIRT-M", name="T-shirt M", unit_price=Decimal("59.00"))


def form_data(rows, **extra):
    data = {"rows-TOTAL_FORMS": str(len(rows)), "rows-INITIAL_FORMS": "0", "submission_key": "k1", **extra}
    for index, row in enumerate(rows):
        # A row's inputs are named with its kind ("rows-0-goods-sku"), except the kind and the reference.
        for name, value in row.items():
            qualified = name if name in ("kind", "reference") else f"{row['kind']}-{name}"
            data[f"rows-{index}-{qualified}"] = value
    return data


def captcha_answer(client):
    """Show the page (which sets a challenge) and answer it through the captcha's test mode (tests/conftest.py)."""
    client.get("/checkout/")
    return CAPTCHA_TEST_ANSWER


def test_the_checkout_starts_with_three_rows_and_a_captcha(shopper):
    page = shopper.get("/checkout/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="rows-TOTAL_FORMS" value="3"' in html
    assert html.count('<fieldset class="row') == 3
    assert 'id="captcha-image"' in html and 'name="captcha"' in html


def test_anonymous_shoppers_are_sent_to_log_in(client, db):
    assert client.get("/checkout/")["Location"].startswith("/accounts/login/")


def test_add_rows_without_javascript(shopper):
    page = shopper.post("/checkout/", form_data([{"kind": "goods"}], add_rows="many", add_count="10"))

    assert page.status_code == 200
    assert 'name="rows-TOTAL_FORMS" value="11"' in page.content.decode()


def test_remove_a_row_renumbers_the_rest(shopper):
    rows = [{"kind": "goods", "sku": "A"}, {"kind": "goods", "sku": "B"}, {"kind": "goods", "sku": "C"}]

    page = shopper.post("/checkout/", form_data(rows, remove_row="1")).content.decode()

    assert 'name="rows-TOTAL_FORMS" value="2"' in page
    assert 'name="rows-0-goods-sku" value="A"' in page and 'name="rows-1-goods-sku" value="C"' in page
    assert 'value="B"' not in page


def test_htmx_adds_rows_and_updates_the_row_count_out_of_band(shopper):
    response = shopper.get("/checkout/rows/", {"rows-TOTAL_FORMS": "3", "add_count": "10"}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert html.count('<fieldset class="row') == 10
    assert 'id="rows-3"' in html and 'id="rows-12"' in html
    assert 'id="id_rows-TOTAL_FORMS" hx-swap-oob="true"' in html and 'value="13"' in html


def test_typing_a_phone_shows_carrier_region_price_and_duplicates(shopper):
    rows = [
        {"kind": "mobile", "phone": "13800138000", "face_value": "50"},
        {"kind": "mobile", "phone": "138 0013 8000", "face_value": "100"},
    ]

    html = shopper.post("/checkout/rows/1/", form_data(rows), HTTP_HX_REQUEST="true").content.decode()

    assert "China Mobile · Beijing" in html
    assert "¥99.00" in html  # 100 × China Mobile's 0.99
    assert "13800138000 is also on row 1" in html
    assert 'id="valid-count"' in html and "2 valid rows" in html
    assert "¥148.50" in html  # the running total


def test_typing_a_bad_value_shows_the_error_on_the_field(shopper):
    rows = [{"kind": "mobile", "phone": "010 1234 5678", "face_value": "50"}]

    html = shopper.post("/checkout/rows/0/", form_data(rows), HTTP_HX_REQUEST="true").content.decode()

    assert 'id="rows-0-mobile-phone-errors" hx-swap-oob="true">010 1234 5678 is not a mobile number' in html


def test_pasted_numbers_become_rows(shopper):
    text = "13800138000\n18612345678,100\nTSHIRT-M,2\n"

    page = shopper.post(
        "/checkout/", form_data([{"kind": "goods"}], **{"import": "1", "text": text, "mobile-default_face_value": "30"})
    )

    html = page.content.decode()
    assert 'name="rows-TOTAL_FORMS" value="3"' in html
    assert 'name="rows-0-mobile-phone" value="13800138000"' in html
    assert 'name="rows-2-goods-sku" value="TSHIRT-M"' in html
    assert "3 valid rows" in html


def test_an_uploaded_csv_becomes_rows(shopper):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("rows.csv", "phone,face value\n13800138000,20\n".encode("gb18030"), "text/csv")

    page = shopper.post("/checkout/", {**form_data([{"kind": "goods"}]), "import": "1", "file": upload})

    assert 'name="rows-0-mobile-phone" value="13800138000"' in page.content.decode()


def test_a_wrong_captcha_places_nothing(shopper):
    captcha_answer(shopper)

    page = shopper.post("/checkout/", form_data([{"kind": "goods", "sku": "TSHIRT-M"}], submit="1", captcha="-1"))

    assert page.status_code == 400
    assert "The answer to the check was wrong" in page.content.decode()
    assert not Batch.objects.exists()


def test_invalid_rows_are_shown_and_placed_only_when_the_shopper_chooses_to_skip_them(shopper):
    rows = [
        {"kind": "goods", "sku": "TSHIRT-M", "quantity": "2"},
        {"kind": "goods", "sku": "NOPE"},
        {"kind": "mobile", "phone": "13800138000", "face_value": "50"},
    ]
    answer = captcha_answer(shopper)

    page = shopper.post("/checkout/", form_data(rows, submit="1", captcha=answer))

    assert page.status_code == 400
    html = page.content.decode()
    assert "No product has the SKU NOPE." in html
    assert "Place the 2 valid rows and skip the rest" in html
    assert not Batch.objects.exists()

    # the captcha was answered once for this batch: the skip choice does not ask again
    placed = shopper.post("/checkout/", form_data(rows, submit_skip="1"))

    batch = Batch.objects.get()
    assert placed["Location"] == f"/batches/{batch.pk}/"
    assert (batch.source, batch.row_count, batch.accepted_rows) == ("web", 3, 2)


def test_a_double_submit_places_one_batch(shopper):
    rows = [{"kind": "goods", "sku": "TSHIRT-M"}]
    shopper.post("/checkout/", form_data(rows, submit="1", captcha=captcha_answer(shopper)))

    shopper.post("/checkout/", form_data(rows, submit="1", captcha=captcha_answer(shopper)))

    assert Batch.objects.count() == 1


def test_an_empty_checkout_asks_for_a_row(shopper):
    page = shopper.post("/checkout/", form_data([{"kind": "goods"}], submit="1", captcha=captcha_answer(shopper)))

    assert page.status_code == 400
    assert "Fill in at least one row." in page.content.decode()


def test_a_tampered_management_form_is_a_clear_400(shopper):
    response = shopper.post("/checkout/", {"rows-TOTAL_FORMS": "lots", "submit": "1"})

    assert response.status_code == 400
    assert "reload the page" in response.content.decode()


def test_resubmitting_a_placed_form_with_other_rows_says_so(shopper):
    ProductFactory(sku="MUG", unit_price=Decimal("25.50"))
    shopper.post(
        "/checkout/", form_data([{"kind": "goods", "sku": "TSHIRT-M"}], submit="1", captcha=captcha_answer(shopper))
    )

    page = shopper.post(
        "/checkout/", form_data([{"kind": "goods", "sku": "MUG"}], submit="1", captcha=captcha_answer(shopper))
    )

    assert page.status_code == 409
    assert "This order form was already placed" in page.content.decode()
    assert Batch.objects.count() == 1


def test_a_pasted_mix_of_lines_becomes_rows_of_the_right_kinds(shopper):
    game_product()
    ProductFactory(sku="GIG-0612", name="Gig 12 June", kind="ticket", unit_price=Decimal("180.00"))
    text = "phone,face value\n13800138000,20\nTSHIRT-M,2\nGAME-GOLD-60,user-123456,3\nGIG-0612,C7\nNOPE-1\n"

    page = shopper.post(
        "/checkout/", form_data([{"kind": "goods"}], **{"import": "1", "text": text, "mobile-default_face_value": "30"})
    )

    html = page.content.decode()
    assert 'name="rows-TOTAL_FORMS" value="5"' in html
    kinds = re.findall(r'data-kind="(\w+)"', html)
    assert kinds == ["mobile", "goods", "game", "ticket", "goods"]
    assert 'name="rows-0-mobile-phone" value="13800138000"' in html
    assert 'name="rows-1-goods-sku" value="TSHIRT-M"' in html and 'name="rows-1-goods-quantity" value="2"' in html
    assert 'name="rows-2-game-account" value="user-123456"' in html
    assert 'name="rows-3-ticket-sku" value="GIG-0612"' in html and 'name="rows-3-ticket-seat" value="C7"' in html
    assert "No product has the SKU NOPE-1." in html  # an unclaimed line is kept as goods, with its problem shown
    assert "4 valid rows" in html


def test_an_import_reads_the_products_of_all_its_lines_in_one_query(django_assert_num_queries, db):
    game_product()
    lines = [f"SKU-{n},1" for n in range(50)] + ["GAME-GOLD-60,user-123456,2", "13800138000"]

    with django_assert_num_queries(1):
        rows = importing.rows_from_text("\n".join(lines), options={"mobile": {"default_face_value": "50"}})

    assert [row["kind"] for row in rows] == ["goods"] * 50 + ["game", "mobile"]
    assert rows[-1] == {"kind": "mobile", "phone": "13800138000", "face_value": "50"}


def test_rows_of_two_kinds_with_the_same_field_names_do_not_collide(shopper):
    game_product()
    data = form_data([{"kind": "game", "sku": "GAME-GOLD-60", "account": "user-123456", "quantity": "2"}])
    data["rows-0-goods-sku"] = "TSHIRT-M"  # typed before the shopper switched the row to game currency
    data["rows-0-goods-quantity"] = "9"

    html = shopper.post("/checkout/rows/0/", data, HTTP_HX_REQUEST="true").content.decode()

    assert "1 valid row" in html
    assert "¥12.00" in html  # 2 × 6.00: the game row's SKU and quantity, not the goods inputs'


def test_a_type_without_a_row_partial_gets_one_text_input_per_field():
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    html = render_to_string(
        "orders/_fields_row.html",
        {
            "p": "rows-4-voucher",
            "v": {"code": "X<1"},
            "errors": {"code": ["Unknown code."]},
            "order_type": SimpleNamespace(fields=("code", "note")),
        },
    )

    assert '<input name="rows-4-voucher-code" value="X&lt;1">' in html
    assert '<span class="field-errors" id="rows-4-voucher-code-errors">Unknown code. </span>' in html
    assert '<input name="rows-4-voucher-note" value="">' in html


def test_the_system_check_warns_when_a_full_checkout_would_exceed_the_upload_limit(settings):
    from orders.web.checks import checkout_fits_the_upload_limit

    assert checkout_fits_the_upload_limit() == []

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = settings.BATCH_MAX_ROWS * 8
    assert [warning.id for warning in checkout_fits_the_upload_limit()] == ["orders.W001"]
