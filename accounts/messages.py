"""Messages people see about logging in and API tokens. Tests assert on these constants."""

from django.utils.translation import gettext_lazy as _

WRONG_CREDENTIALS = _("The username or password is wrong, or the account is disabled.")
NOT_TEXT_WE_CAN_READ = _("Contains characters that cannot be read.")
LOGIN_SLOWED = _(
    "Too many failed attempts for this account from your address: wait %(seconds)s seconds before trying again."
)
LOCKED_OUT = _(
    "Too many failed attempts: logging in to this account from your address is locked for %(minutes)s minutes."
)
TOKEN_CREATED = _("Your new API token is below. Copy it now: it is not shown again.")
TOKEN_ROTATED = _("Your API token was replaced. The old one no longer works; copy the new one now.")
TOKEN_REVOKED = _("Your API token was revoked; requests that use it are refused from now on.")
TOKEN_ALREADY_EXISTS = _("You already have an API token. Rotate it to get a new key.")
NO_TOKEN = _("You have no API token to revoke.")
