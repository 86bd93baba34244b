"""Property-based fuzzing of the checkout's live row check, "paste a list" and CSV upload (issue 12): any
bytes in any field give a page, never a 5xx, and nothing is placed by checking or importing rows."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import given
from hypothesis import strategies as st

from orders.models import Batch, BatchRow, Order
from tests.fuzz import form_texts, form_values, fuzz_settings, urlencoded
from tests.orders.factories import ProductFactory
from tests.recharge.factories import game_product

ROW_FIELDS = ["kind", "sku", "quantity", "phone", "face_value", "account", "reference"]


@pytest.fixture(autouse=True)
def catalogue(db, carrier_discounts):
    ProductFactory(sku="POSTER-A2", unit_price=Decimal("20.00"))
    game_product()


def nothing_placed():
    return not (Batch.objects.exists() or BatchRow.objects.exists() or Order.objects.exists())


row_fields = st.fixed_dictionaries(
    {"kind": st.sampled_from([b"goods", b"mobile", b"game"]) | form_values},
    optional=dict.fromkeys(ROW_FIELDS[1:], form_values),
)


@fuzz_settings("checkout_row")
@given(rows=st.lists(row_fields, min_size=1, max_size=3), index=st.integers(0, 3))
def test_the_live_row_check_answers_any_bytes_with_a_page(shopper, rows, index):
    fields = {"rows-TOTAL_FORMS": str(len(rows)).encode(), "rows-INITIAL_FORMS": b"0"}
    for number, row in enumerate(rows):
        fields.update({f"rows-{number}-{name}": value for name, value in row.items()})

    response = shopper.post(
        f"/checkout/rows/{index}/",
        urlencoded(fields),
        content_type="application/x-www-form-urlencoded",
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code in (200, 400)
    assert nothing_placed()


@fuzz_settings("paste")
@given(lines=st.lists(st.lists(form_texts, min_size=1, max_size=4).map(",".join), min_size=1, max_size=5))
def test_a_pasted_list_of_anything_answers_with_a_page(shopper, lines):
    fields = {
        "rows-TOTAL_FORMS": b"1",
        "rows-INITIAL_FORMS": b"0",
        "rows-0-kind": b"goods",
        "import": b"1",
        "text": "\n".join(lines).encode("utf-8"),
        "default_face_value": b"50",
    }

    response = shopper.post("/checkout/", urlencoded(fields), content_type="application/x-www-form-urlencoded")

    assert response.status_code in (200, 400)
    assert nothing_placed()


@fuzz_settings("csv_upload")
@given(
    content=st.one_of(
        st.binary(max_size=400),
        st.lists(st.lists(form_texts, min_size=1, max_size=4).map(",".join), max_size=5).map(
            lambda lines: "\n".join(lines).encode("gb18030", "replace")
        ),
    )
)
def test_an_uploaded_csv_of_any_bytes_answers_with_a_page(shopper, content):
    upload = SimpleUploadedFile("rows.csv", content, "text/csv")

    response = shopper.post(
        "/checkout/",
        {"rows-TOTAL_FORMS": "1", "rows-INITIAL_FORMS": "0", "rows-0-kind": "goods", "import": "1", "file": upload},
    )

    assert response.status_code in (200, 400)
    assert nothing_placed()
