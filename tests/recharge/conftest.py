import pytest


@pytest.fixture(autouse=True)
def _discounts(carrier_discounts):
    pass
