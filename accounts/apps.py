from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """People's accounts on the website: sign-up, logging in safely, and their API token."""

    name = "accounts"
    verbose_name = _("Accounts")
