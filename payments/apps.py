from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self):
        from orders import billing, invariants
        from payments.billing import PaymentsBilling
        from payments.invariants import INVARIANTS

        billing.register(PaymentsBilling())
        invariants.register(*INVARIANTS)
