import importlib
import importlib.util

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

# The real rails, each in a module of its own that registers its provider when imported (payments/providers.py).
RAIL_MODULES = ("payments.rails.wechat", "payments.rails.alipay")


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its package is not there at all
        return False


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self):
        from orders import billing, invariants
        from payments import providers  # noqa: F401 - registers the sandbox first: the payment page lists it first
        from payments.billing import PaymentsBilling
        from payments.invariants import INVARIANTS

        billing.register(PaymentsBilling())
        invariants.register(*INVARIANTS)
        for module in RAIL_MODULES:
            # A rail that is not installed is simply not offered; one that is installed but fails to import
            # is a bug that must stop the site, so only its absence is tolerated.
            if _module_exists(module):
                importlib.import_module(module)
