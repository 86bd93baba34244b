"""The batch API against the requests that used to answer 500 (issue 12): each is now a 4xx with a JSON body
in the one error shape, naming the row and field where there is one, and nothing is created."""

import json
from decimal import Decimal

import pytest

from config.inputs import LONE_SURROGATE, NUL_CHARACTER
from orders.models import Batch, BatchRow
from tests.orders.factories import ProductFactory
from tests.recharge.factories import game_product

BATCHES = "/api/v1/batches/"


@pytest.fixture(autouse=True)
def catalogue(db):
    ProductFactory(sku="POSTER-A2", unit_price=Decimal("20.00"))
    game_product()


def post_raw(client, body: str | bytes, **headers):
    return client.post(BATCHES, body, content_type="application/json", **headers)


def assert_error_shape(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str) and body["code"]
    return body


def row_errors(response) -> dict:
    return {row["index"]: row["errors"] for row in response.json()["rows"]}


@pytest.mark.parametrize(
    "row, field, message",
    [
        ({"kind": "goods", "sku": "POSTER\u0000A2"}, "sku", NUL_CHARACTER),
        ({"kind": "goods", "sku": "POSTER-A2", "reference": "PO\u0000-1"}, "reference", NUL_CHARACTER),
        ({"kind": "goods", "sku": "\ud800"}, "sku", LONE_SURROGATE),
        ({"kind": "game", "sku": "GAME-GOLD-60", "account": "x\udc00y"}, "account", LONE_SURROGATE),
        ({"kind": "mobile", "phone": "138\u00000138000", "face_value": "50"}, "phone", NUL_CHARACTER),
        ({"kind": "goods", "sku": "POSTER-A2", "quantity": "9" * 4301}, "quantity", "Must be a whole number."),
        ({"kind": "goods", "sku": "POSTER-A2", "quantity": "²"}, "quantity", "Must be a whole number."),
        ({"kind": "mobile", "phone": "13800138000", "face_value": "1e400"}, "face_value", None),
        ({"kind": "mobile", "phone": "13800138000", "face_value": "5" * 5000}, "face_value", None),
    ],
    ids=[
        "nul-sku",
        "nul-reference",
        "surrogate-sku",
        "surrogate-account",
        "nul-phone",
        "4301-digit-quantity",
        "superscript-quantity",
        "huge-exponent-face-value",
        "5000-digit-face-value",
    ],
)
def test_text_and_numbers_the_database_or_python_refuse_are_a_400_naming_row_and_field(api_client, row, field, message):
    # JSON escapes keep the NUL and the lone surrogate as the client sent them (\u0000, \ud800).
    body = json.dumps({"rows": [{"kind": "goods", "sku": "POSTER-A2"}, row]})

    response = post_raw(api_client, body)

    assert_error_shape(response, 400)
    errors = row_errors(response)
    assert list(errors) == [1] and list(errors[1]) == [field]
    if message is not None:
        assert errors[1][field] == [str(message)]
    assert not Batch.objects.exists()


def test_a_refused_row_skipped_with_skip_invalid_is_kept_with_its_bad_characters_escaped(api_client):
    body = json.dumps(
        {
            "rows": [{"kind": "goods", "sku": "POSTER-A2"}, {"kind": "goods", "sku": "A\u0000", "x\ud800": 1}],
            "skip_invalid": True,
        }
    )

    response = post_raw(api_client, body)

    assert response.status_code == 202
    assert response.json()["rejected_rows"][0]["errors"] == {
        "sku": [str(NUL_CHARACTER)],
        "x\\ud800": ["Unknown field."],
    }
    rejected = BatchRow.objects.get(outcome=BatchRow.Outcome.REJECTED)
    assert rejected.data == {"kind": "goods", "sku": "A\\u0000", "x\\ud800": 1}


@pytest.mark.parametrize("depth", [33, 1000, 2000, 100_000])
def test_json_nested_deeper_than_the_limit_is_a_400_before_parsing(api_client, depth):
    body = '{"rows": [' + "[" * depth + "]" * depth + "]}"

    response = post_raw(api_client, body)

    body = assert_error_shape(response, 400)
    assert body["code"] == "too_deep"
    assert body["detail"] == "JSON nested deeper than 32 levels is refused."
    assert not Batch.objects.exists()


def test_nesting_inside_strings_does_not_count(api_client):
    row = {"kind": "goods", "sku": "POSTER-A2", "reference": "[" * 60}

    response = post_raw(api_client, json.dumps({"rows": [row]}))

    assert response.status_code == 202


def test_a_json_number_longer_than_40_characters_is_a_400(api_client):
    response = post_raw(api_client, '{"rows": [{"kind": "goods", "sku": "POSTER-A2", "quantity": ' + "9" * 4301 + "}]}")

    body = assert_error_shape(response, 400)
    assert "JSON numbers are limited to 40 characters" in body["detail"]


def test_a_30_mb_body_is_a_413_in_json(api_client):
    response = post_raw(api_client, b'{"rows": ["' + b"x" * (30 * 1024 * 1024) + b'"]}')

    assert assert_error_shape(response, 413)["code"] == "request_too_large"


def test_the_parser_itself_stops_reading_past_the_limit(settings):
    """Without a Content-Length (a chunked body), the bound is the parser's: it reads one byte past it, no more."""
    import io

    from rest_framework.exceptions import APIException

    from config.json_input import BoundedJSONParser

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    stream = io.BytesIO(b"[" + b"1," * 10_000 + b"1]")

    with pytest.raises(APIException) as refused:
        BoundedJSONParser().parse(stream)

    assert refused.value.status_code == 413
    assert stream.tell() == 1001


def test_a_form_body_is_a_415_in_json(api_client):
    response = api_client.post(BATCHES, {"rows": "x"})  # multipart, as a browser form would send

    assert assert_error_shape(response, 415)["code"] == "unsupported_media_type"


def test_skip_invalid_must_be_a_json_boolean(api_client):
    response = post_raw(
        api_client, json.dumps({"rows": [{"kind": "goods", "sku": "POSTER-A2"}], "skip_invalid": "yes"})
    )

    assert assert_error_shape(response, 400)["skip_invalid"] == ["Must be a valid boolean."]


def test_an_idempotency_key_with_a_nul_is_a_400(api_client):
    response = post_raw(
        api_client, json.dumps({"rows": [{"kind": "goods", "sku": "POSTER-A2"}]}), HTTP_IDEMPOTENCY_KEY="k\x00"
    )

    assert_error_shape(response, 400)
    assert not Batch.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/products/%00/", "/api/v1/batches/%00/", "/api/v1/products/?page=%00"])
def test_a_nul_in_the_path_or_query_is_a_400_in_json(api_client, path):
    assert assert_error_shape(api_client.get(path), 400)["code"] == "bad_characters"


@pytest.mark.parametrize("page", ["", "abc", "0", "-1", "1.5", "9" * 50, "last"])
def test_an_invalid_page_parameter_is_a_400_naming_it(api_client, page):
    response = api_client.get("/api/v1/products/", {"page": page})

    assert assert_error_shape(response, 400)["page"] == ["Must be a whole number of at least 1."]


def test_a_page_past_the_end_is_a_404_in_json(api_client):
    assert_error_shape(api_client.get("/api/v1/products/", {"page": "7"}), 404)


def test_an_order_id_past_bigint_is_a_404(api_client):
    assert_error_shape(api_client.get(f"/api/v1/orders/{10**30}/"), 404)
