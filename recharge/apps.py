from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RechargeConfig(AppConfig):
    name = "recharge"
    verbose_name = _("Recharge")
