"""The batch API's answers to good and bad input (SPEC sections 4 and 7.6): never a 500, always the row
and the field. Placing itself is covered with the real worker in test_pipeline."""

import json
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from orders import messages
from orders.models import Batch, BatchRow
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory


@pytest.fixture(autouse=True)
def catalogue(db):
    ProductFactory(sku="TSHIRT-M", unit_price=Decimal("59.00"))
    ProductFactory(sku="OLD", inactive=True)


def post_rows(client, rows, **body):
    return client.post("/api/v1/batches/", {"rows": rows, **body}, format="json")


def row_errors(response) -> dict:
    return {row["index"]: row["errors"] for row in response.json()["rows"]}


def test_malformed_json_is_400_with_a_parse_message(api_client):
    response = api_client.post("/api/v1/batches/", '{"rows": [', content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    "body, field, message",
    [
        ([1, 2], "non_field_errors", "Invalid data. Expected a dictionary, but got list."),
        ({}, "rows", "This field is required."),
        ({"rows": "TSHIRT-M"}, "rows", str(messages.ROWS_NOT_LIST)),
        ({"rows": {"kind": "goods"}}, "rows", str(messages.ROWS_NOT_LIST)),
        ({"rows": []}, "rows", str(messages.NO_ROWS)),
        (
            {"rows": [{"kind": "goods", "sku": "TSHIRT-M"}], "skip_invalid": "perhaps"},
            "skip_invalid",
            "Must be a valid boolean.",
        ),
    ],
)
def test_a_malformed_envelope_is_400_naming_the_field(api_client, body, field, message):
    response = api_client.post("/api/v1/batches/", json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert response.json()[field] == [message]
    assert not Batch.objects.exists()


def test_more_rows_than_the_limit_is_400_and_nothing_is_created(api_client, settings):
    settings.BATCH_MAX_ROWS = 3

    response = post_rows(api_client, [{"kind": "goods", "sku": "TSHIRT-M"}] * 4)

    assert response.status_code == 400
    assert response.json()["rows"] == ["At most 3 rows per batch; this one has 4."]
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    "row, errors",
    [
        ({"kind": "goods", "sku": "TSHIRT-M", "quantity": -2}, {"quantity": ["Must be at least 1."]}),
        ({"kind": "goods", "sku": "TSHIRT-M", "quantity": 0}, {"quantity": ["Must be at least 1."]}),
        ({"kind": "goods", "sku": "TSHIRT-M", "quantity": 10**30}, {"quantity": ["Must be at most 999."]}),
        ({"kind": "goods", "sku": "TSHIRT-M", "quantity": 2.5}, {"quantity": ["Must be a whole number."]}),
        ({"kind": "goods", "sku": "TSHIRT-M", "quantity": True}, {"quantity": ["Must be a whole number."]}),
        ({"kind": "goods", "sku": "TSHIRT-M", "quantity": "lots"}, {"quantity": ["Must be a whole number."]}),
        ({"kind": "goods", "sku": ["TSHIRT-M"]}, {"sku": ["Must be text."]}),
        ({"kind": "goods", "sku": "  "}, {"sku": ["May not be blank."]}),
        ({"kind": "goods", "sku": "X" * 65}, {"sku": ["At most 64 characters."]}),
        ({"kind": "goods", "sku": "NOPE"}, {"sku": ["No product has the SKU NOPE."]}),
        ({"kind": "goods", "sku": "OLD"}, {"sku": ["OLD is not on sale."]}),
        ({"kind": "goods"}, {"sku": ["This field is required."]}),
        ({"sku": "TSHIRT-M"}, {"kind": ["This field is required."]}),
        (
            {"kind": "boat", "sku": "TSHIRT-M"},
            {"kind": ["Unknown kind boat; expected one of: game, goods, mobile, ticket."]},
        ),
        ({"kind": 7}, {"kind": ["Unknown kind 7; expected one of: game, goods, mobile, ticket."]}),
        ({"kind": "goods", "sku": "TSHIRT-M", "qty": 2}, {"qty": ["Unknown field."]}),
        ({"kind": "goods", "sku": "TSHIRT-M", "reference": "r" * 65}, {"reference": ["At most 64 characters."]}),
        ("TSHIRT-M", {"non_field_errors": ["Each row must be a JSON object."]}),
        (None, {"non_field_errors": ["Each row must be a JSON object."]}),
    ],
)
def test_a_bad_row_is_400_naming_its_index_and_field(api_client, row, errors):
    response = post_rows(api_client, [{"kind": "goods", "sku": "TSHIRT-M"}, row])

    assert response.status_code == 400
    assert row_errors(response) == {1: errors}
    assert not Batch.objects.exists()


def test_every_row_invalid_is_400_even_with_skip_invalid(api_client):
    response = post_rows(api_client, [{"kind": "goods", "sku": "NOPE"}], skip_invalid=True)

    assert response.status_code == 400
    assert response.json()["detail"] == str(messages.ALL_ROWS_INVALID)
    assert not Batch.objects.exists()


def test_skip_invalid_records_the_rejected_rows_with_their_errors(api_client):
    response = post_rows(
        api_client, [{"kind": "goods", "sku": "TSHIRT-M"}, {"kind": "goods", "sku": "NOPE"}], skip_invalid=True
    )

    assert response.status_code == 202
    assert response.json()["rejected_rows"] == [{"index": 1, "errors": {"sku": ["No product has the SKU NOPE."]}}]
    rejected = BatchRow.objects.get(outcome=BatchRow.Outcome.REJECTED)
    assert (rejected.row_index, rejected.data) == (1, {"kind": "goods", "sku": "NOPE"})


def test_a_reference_repeated_in_a_batch_or_already_used_is_a_row_error(api_client, user):
    first = post_rows(api_client, [{"kind": "goods", "sku": "TSHIRT-M", "reference": "PO-1"}])
    assert first.status_code == 202

    response = post_rows(
        api_client,
        [
            {"kind": "goods", "sku": "TSHIRT-M", "reference": "PO-1"},
            {"kind": "goods", "sku": "TSHIRT-M", "reference": "PO-2"},
            {"kind": "goods", "sku": "TSHIRT-M", "reference": "PO-2"},
        ],
    )

    assert response.status_code == 400
    assert row_errors(response) == {
        0: {"reference": ["Reference PO-1 is already used by another order."]},
        2: {"reference": ["Reference PO-2 is also on row 2."]},
    }


def test_another_users_reference_is_no_concern(api_client):
    other = APIClient()
    other.force_authenticate(UserFactory())
    assert post_rows(other, [{"kind": "goods", "sku": "TSHIRT-M", "reference": "PO-1"}]).status_code == 202

    assert post_rows(api_client, [{"kind": "goods", "sku": "TSHIRT-M", "reference": "PO-1"}]).status_code == 202


def test_the_same_idempotency_key_and_body_returns_the_same_batch(api_client):
    rows = [{"kind": "goods", "sku": "TSHIRT-M", "quantity": 2}]

    first = api_client.post("/api/v1/batches/", {"rows": rows}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api_client.post("/api/v1/batches/", {"rows": rows}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Batch.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_is_409(api_client):
    rows = [{"kind": "goods", "sku": "TSHIRT-M", "quantity": 2}]
    api_client.post("/api/v1/batches/", {"rows": rows}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    rows[0]["quantity"] = 3
    response = api_client.post("/api/v1/batches/", {"rows": rows}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 409
    assert response.json()["detail"] == str(messages.IDEMPOTENCY_CONFLICT)
    assert Batch.objects.count() == 1


def test_another_users_batch_and_order_answer_404(api_client):
    other = APIClient()
    other.force_authenticate(UserFactory())
    batch_id = post_rows(other, [{"kind": "goods", "sku": "TSHIRT-M"}]).json()["id"]

    assert api_client.get(f"/api/v1/batches/{batch_id}/").status_code == 404
    assert api_client.post(f"/api/v1/batches/{batch_id}/retry-failed/").status_code == 404
    assert api_client.get("/api/v1/batches/").json()["count"] == 0


def test_a_batch_id_that_is_not_a_uuid_answers_404(api_client):
    assert api_client.get("/api/v1/batches/not-a-uuid/").status_code == 404


def test_anonymous_requests_are_refused(db):
    response = APIClient().post("/api/v1/batches/", {"rows": []}, format="json")

    assert response.status_code == 401


def test_token_authentication_works(db):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=UserFactory())
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert client.get("/api/v1/batches/").status_code == 200


def test_products_lists_only_what_is_on_sale(api_client):
    skus = [product["sku"] for product in api_client.get("/api/v1/products/").json()["results"]]

    assert skus == ["TSHIRT-M"]


def test_openapi_schema_and_docs_are_served(api_client):
    assert api_client.get("/api/schema/").status_code == 200
    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"https://" not in docs.content  # the Swagger UI assets come from this site
