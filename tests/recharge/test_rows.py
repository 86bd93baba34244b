"""Recharge rows through the batch API: clear errors naming row and field, warnings for duplicates."""

from decimal import Decimal

import pytest

from orders.models import Order
from tests.recharge.factories import game_product


@pytest.fixture(autouse=True)
def catalogue(db):
    game_product()


def post_rows(client, rows, **body):
    return client.post("/api/v1/batches/", {"rows": rows, **body}, format="json")


def row_errors(response) -> dict:
    return {row["index"]: row["errors"] for row in response.json()["rows"]}


@pytest.mark.parametrize(
    "row, errors",
    [
        (
            {"kind": "mobile", "phone": "1380013800", "face_value": "50"},
            {"phone": ["1380013800 is not a valid mainland China phone number."]},
        ),
        (
            {"kind": "mobile", "phone": "010-12345678", "face_value": "50"},
            {"phone": ["010-12345678 is not a mobile number (a landline cannot be topped up)."]},
        ),
        (
            {"kind": "mobile", "phone": "13800138000", "face_value": "40"},
            {"face_value": ["40 is not an offered face value; choose one of: 10, 20, 30, 50, 100, 200, 300, 500."]},
        ),
        (
            {"kind": "mobile", "phone": "13800138000", "face_value": "fifty"},
            {"face_value": ["Must be a face value such as 50."]},
        ),
        (
            {"kind": "mobile", "phone": "13800138000", "face_value": True},
            {"face_value": ["Must be a face value such as 50."]},
        ),
        ({"kind": "mobile", "phone": "13800138000"}, {"face_value": ["This field is required."]}),
        ({"kind": "mobile", "face_value": "50"}, {"phone": ["This field is required."]}),
        (
            {"kind": "mobile", "phone": "", "face_value": ""},
            {"phone": ["This field is required."], "face_value": ["This field is required."]},
        ),
        (
            {"kind": "game", "sku": "GAME-GOLD-60", "account": "", "quantity": 1},
            {"account": ["This field is required."]},
        ),
        (
            {"kind": "game", "sku": "GAME-GOLD-60", "account": "bob", "quantity": 1},
            {"account": ["bob is not a valid account for 60 gold."]},
        ),
        (
            {"kind": "game", "sku": "GAME-GOLD-60", "account": "user-123456", "quantity": 0},
            {"quantity": ["Must be at least 1."]},
        ),
        ({"kind": "game", "sku": "NOPE", "account": "user-123456"}, {"sku": ["No product has the SKU NOPE."]}),
        ({"kind": "mobile", "phone": "13800138000", "face_value": "50", "sku": "X"}, {"sku": ["Unknown field."]}),
    ],
)
def test_a_bad_recharge_row_names_its_field(api_client, row, errors):
    response = post_rows(api_client, [{"kind": "mobile", "phone": "13800138000", "face_value": "50"}, row])

    assert response.status_code == 400
    assert row_errors(response) == {1: errors}


def test_a_game_sku_used_as_goods_is_refused(api_client):
    response = post_rows(api_client, [{"kind": "goods", "sku": "GAME-GOLD-60"}])

    assert row_errors(response) == {0: {"sku": ["GAME-GOLD-60 is not sold as Goods."]}}


def test_numbers_and_face_values_are_normalised_on_the_row(api_client, user):
    response = post_rows(api_client, [{"kind": "mobile", "phone": "+86 138-0013-8000", "face_value": "50.00"}])

    assert response.status_code == 202
    batch = user.batches.get()
    assert batch.rows.get().data == {"phone": "13800138000", "face_value": "50"}


def test_the_same_account_twice_is_allowed_but_flagged(api_client):
    rows = [
        {"kind": "mobile", "phone": "13800138000", "face_value": "50"},
        {"kind": "mobile", "phone": "+86 13800138000", "face_value": "20"},
        {"kind": "game", "sku": "GAME-GOLD-60", "account": "user-123456"},
        {"kind": "game", "sku": "GAME-GOLD-60", "account": "user-123456", "quantity": 2},
    ]

    response = post_rows(api_client, rows)

    assert response.status_code == 202
    assert response.json()["warnings"] == [
        {"index": 1, "field": "phone", "message": "13800138000 is also on row 1: it will be topped up twice."},
        {"index": 3, "field": "account", "message": "user-123456 is also on row 3: it will be topped up twice."},
    ]


def test_placing_prices_a_top_up_at_face_value_times_the_carrier_discount(place_batch):
    batch = place_batch(
        [
            {"kind": "mobile", "phone": "13800138000", "face_value": "100"},  # China Mobile 0.99
            {"kind": "mobile", "phone": "18612345678", "face_value": "50"},  # China Unicom 0.985
            {"kind": "mobile", "phone": "18912345678", "face_value": "30"},  # China Telecom 0.98
            {"kind": "game", "sku": "GAME-GOLD-60", "account": "user-123456", "quantity": 3},
        ],
        finalize=False,
    )

    orders = list(Order.objects.filter(batch=batch).order_by("row_index"))
    assert [order.amount for order in orders] == [
        Decimal("99.00"),
        Decimal("49.25"),
        Decimal("29.40"),
        Decimal("18.00"),
    ]
    assert orders[0].details == {
        "phone": "13800138000",
        "carrier": "China Mobile",
        "carrier_zh": "中国移动",
        "region": "北京市",
        "region_en": "Beijing",
        "face_value": "100",
    }
    assert orders[3].details["account"] == "user-123456"
