from decimal import Decimal

import factory

from orders.models import Product


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    name = factory.LazyAttribute(lambda product: f"Product {product.sku}")
    kind = "goods"
    unit_price = Decimal("10.00")
    stock = None
    active = True

    class Params:
        inactive = factory.Trait(active=False)
