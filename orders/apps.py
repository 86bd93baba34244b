from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")

    def ready(self):
        from orders import goods, invariants, registry
        from orders.web import checks  # noqa: F401 (registers the checkout's system check)

        registry.register(goods.GoodsOrderType())
        invariants.register(*invariants.INVARIANTS)
