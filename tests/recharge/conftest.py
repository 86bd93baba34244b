from decimal import Decimal

import pytest


@pytest.fixture(autouse=True)
def carrier_discounts(db):
    """The migration's defaults, again: a transactional test before this one flushed every table."""
    from recharge.models import CarrierDiscount

    for carrier, discount in {"China Mobile": "0.990", "China Unicom": "0.985", "China Telecom": "0.980"}.items():
        CarrierDiscount.objects.update_or_create(carrier=carrier, defaults={"discount": Decimal(discount)})
