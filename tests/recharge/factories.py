from decimal import Decimal

from tests.orders.factories import ProductFactory


def game_product(sku="GAME-GOLD-60", price="6.00", pattern=r"user-\d{6}"):
    return ProductFactory(
        sku=sku, name="60 gold", kind="game", unit_price=Decimal(price), attributes={"account_pattern": pattern}
    )
