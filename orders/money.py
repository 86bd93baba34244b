"""Money is a Decimal with two places in the shop's currency; this is the one rounding rule."""

from decimal import ROUND_HALF_UP, Decimal

MONEY_MAX_DIGITS = 12
MONEY_DECIMAL_PLACES = 2
CENT = Decimal("0.01")


def to_money(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
