"""Property-based fuzzing of POST /api/v1/batches/ (issue 12): whatever the rows or the bytes, the answer is
never a 5xx, every refusal is JSON in the one error shape, and a refusal leaves the database as it was."""

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.models import Batch, BatchRow, Order
from tests.fuzz import dumps, fuzz_settings, json_values, raw_bodies, rows
from tests.orders.factories import ProductFactory
from tests.recharge.factories import game_product

BATCHES = "/api/v1/batches/"


@pytest.fixture(autouse=True)
def catalogue(db, settings):
    ProductFactory(sku="POSTER-A2")
    ProductFactory(sku="TSHIRT-M", stock=5)
    game_product()
    # Hundreds of submissions in a few seconds: this test is about input, not rate limits.
    settings.REST_FRAMEWORK = copy.deepcopy(settings.REST_FRAMEWORK)
    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].update(user="100000/minute", batches="100000/minute")


def database_state():
    return Batch.objects.count(), BatchRow.objects.count(), Order.objects.count()


def assert_answer(response, before):
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json")
        body = json.loads(response.content)
        assert isinstance(body["detail"], str) and isinstance(body["code"], str)
        assert database_state() == before


@fuzz_settings("api_rows")
@given(rows=st.lists(rows, min_size=0, max_size=5), skip_invalid=st.one_of(st.booleans(), json_values))
def test_any_rows_get_a_4xx_or_are_accepted_never_a_5xx(api_client, rows, skip_invalid):
    before = database_state()

    response = api_client.post(
        BATCHES, dumps({"rows": rows, "skip_invalid": skip_invalid}), content_type="application/json"
    )

    assert_answer(response, before)


@fuzz_settings("api_raw_body")
@given(
    body=raw_bodies,
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=latin-1", "text/plain", "application/x-www-form-urlencoded"]
    ),
)
def test_any_bytes_get_a_4xx_in_json(api_client, body, content_type):
    before = database_state()

    response = api_client.post(BATCHES, body, content_type=content_type)

    assert_answer(response, before)
