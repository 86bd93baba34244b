"""The checkout's live row check, its submit and "paste a list" / CSV upload with the inputs that used to answer
500 (issue 12): the page answers with the problem on the field, and nothing is placed."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config.inputs import NUL_CHARACTER
from orders.models import Batch
from tests.orders.factories import ProductFactory
from tests.web.test_checkout import captcha_answer, form_data


@pytest.fixture(autouse=True)
def catalogue(db):
    ProductFactory(sku="POSTER-A2", unit_price=Decimal("20.00"))


HOSTILE_ROWS = [
    ({"kind": "goods", "sku": "POSTER-A2", "quantity": "9" * 4301}, "quantity", "Must be a whole number."),
    ({"kind": "goods", "sku": "POSTER\x00A2"}, "sku", str(NUL_CHARACTER)),
    ({"kind": "goods", "sku": "POSTER-A2", "reference": "PO\x00"}, "reference", str(NUL_CHARACTER)),
    ({"kind": "mobile", "phone": "13800138000", "face_value": "1e400"}, "face_value", None),
    ({"kind": "goods", "sku": "[" * 2000, "quantity": "{" * 2000}, "quantity", "Must be a whole number."),
]
IDS = ["4301-digits", "nul-sku", "nul-reference", "huge-exponent", "brackets"]


def errors_id(row: dict, field: str) -> str:
    """The id of a field's error span: a type's own inputs carry the kind, the common ones do not."""
    return f"rows-0-{field}-errors" if field == "reference" else f"rows-0-{row['kind']}-{field}-errors"


@pytest.mark.parametrize("row, field, message", HOSTILE_ROWS, ids=IDS)
def test_the_live_row_check_shows_the_problem_on_the_field(shopper, row, field, message):
    response = shopper.post("/checkout/rows/0/", form_data([row]), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="{errors_id(row, field)}" hx-swap-oob="true">' in html
    if message is not None:
        assert message in html


@pytest.mark.parametrize("row, field, message", HOSTILE_ROWS, ids=IDS)
def test_submitting_shows_the_problem_and_places_nothing(shopper, row, field, message):
    answer = captcha_answer(shopper)

    response = shopper.post("/checkout/", form_data([row], captcha=answer))

    assert response.status_code == 400
    assert f'id="{errors_id(row, field)}"' in response.content.decode()
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    "text",
    ["POSTER-A2," + "9" * 4301, "[" * 2000 + ",1", "13800138000," + "9" * 5000, "x" * 200_000 + ",1"],
    ids=["4301-digits", "brackets", "huge-face-value", "field-past-csv-limit"],
)
def test_a_pasted_list_never_crashes_the_page(shopper, text):
    response = shopper.post(
        "/checkout/", form_data([{"kind": "goods"}], **{"import": "1", "text": text, "mobile-default_face_value": "30"})
    )

    assert response.status_code in (200, 400)
    assert not Batch.objects.exists()


def test_a_pasted_nul_is_refused_by_the_form(shopper):
    response = shopper.post("/checkout/", form_data([{"kind": "goods"}], **{"import": "1", "text": "POSTER\x00A2,1"}))

    assert response.status_code == 400  # Django's CharField refuses NUL in the pasted text
    assert 'name="rows-0-goods-sku" value="POSTER' not in response.content.decode()


def test_an_uploaded_csv_with_nul_bytes_shows_the_problem_on_the_row(shopper):
    upload = SimpleUploadedFile("rows.csv", b"POSTER\x00A2,1\nGAME\x00X,acc,1\n", "text/csv")

    response = shopper.post("/checkout/", {**form_data([{"kind": "goods"}]), "import": "1", "file": upload})

    assert response.status_code == 200
    assert str(NUL_CHARACTER) in response.content.decode()
