from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RechargeConfig(AppConfig):
    name = "recharge"
    verbose_name = _("Recharge")

    def ready(self):
        from orders import invariants, registry
        from recharge.invariants import INVARIANTS
        from recharge.order_types import GameCurrencyType, MobileTopUpType

        registry.register(MobileTopUpType())
        registry.register(GameCurrencyType())
        invariants.register(*INVARIANTS)
