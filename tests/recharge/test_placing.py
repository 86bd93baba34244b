"""Mobile top-up and game currency rows placed in one statement: the same orders as their `place`, in at most
three round trips."""

from typing import Any

import pytest

from orders.models import Product
from recharge.models import CarrierDiscount
from tests.factories import UserFactory
from tests.orders.placing_ways import (
    place_every_row,
    round_trips,
    stock,
    submit,
    the_locked_way_only,
    what_placing_left,
)
from tests.recharge.factories import game_product

ROWS: list[dict[str, Any]] = [
    {"kind": "mobile", "phone": "13800138000", "face_value": "50"},  # China Mobile, 0.990
    {"kind": "mobile", "phone": "18912345678", "face_value": "30", "reference": "TOPUP-1"},  # China Telecom, 0.980
    {"kind": "mobile", "phone": "19212345678", "face_value": "100"},  # China Broadnet: no discount listed
    {"kind": "game", "sku": "GAME-GOLD-60", "account": "user-123456", "quantity": 3},
    {"kind": "game", "sku": "GAME-GEMS", "account": "user-654321", "quantity": 2},
    {"kind": "game", "sku": "GAME-GEMS", "account": "user-000001", "quantity": 2},  # one unit left: out of stock
]


@pytest.fixture
def catalogue(db):
    game_product()
    game_product(sku="GAME-GEMS", price="12.50")
    Product.objects.filter(sku="GAME-GEMS").update(stock=3)
    CarrierDiscount.objects.filter(carrier="China Broadnet").delete()


def test_one_statement_and_the_locked_way_leave_the_same_orders_rows_audit_and_stock(catalogue):
    outcomes, stocks = [], []
    for locked in (False, True):
        Product.objects.filter(sku="GAME-GEMS").update(stock=3)
        batch = submit(UserFactory(), ROWS)
        if locked:
            with the_locked_way_only():
                results = place_every_row(batch)
        else:
            results = place_every_row(batch)
        outcomes.append((results, what_placing_left(batch)))
        stocks.append(stock())

    assert outcomes[0] == outcomes[1]
    assert stocks[0] == stocks[1] == {"GAME-GOLD-60": None, "GAME-GEMS": 1}
    results, left = outcomes[0]
    assert [result["amount"] for result in results] == ["49.50", "29.40", "100.00", "18.00", "25.00", None]
    assert results[-1]["code"] == "out_of_stock"
    assert left["orders"][0]["details"] == {
        "phone": "13800138000",
        "carrier": "China Mobile",
        "carrier_zh": "中国移动",
        "region": "北京市",
        "region_en": "Beijing",
        "face_value": "50",
    }
    assert left["orders"][3]["details"] == {"sku": "GAME-GOLD-60", "name": "60 gold", "account": "user-123456"}
    assert left["orders"][1]["reference"] == "TOPUP-1"


@pytest.mark.parametrize("row", [ROWS[0], ROWS[3], ROWS[4]], ids=["mobile", "game", "game with stock"])
def test_a_recharge_row_takes_at_most_three_round_trips(catalogue, row):
    batch = submit(UserFactory(), [row] * 3)

    trips = [round_trips(batch.pk, row_index) for row_index in range(3)]

    assert all(len(statements) <= 3 for statements in trips), trips
    assert len(trips[-1]) == 2  # the row, then the statement
    assert all(statements[-1].startswith("EXECUTE place_row_") for statements in trips)
