"""Messages people see about recharge rows. Tests assert on these constants."""

from django.utils.translation import gettext_lazy as _

NOT_A_PHONE_NUMBER = _("{phone} is not a valid mainland China phone number.")
NOT_A_MOBILE_NUMBER = _("{phone} is not a mobile number (a landline cannot be topped up).")
FACE_VALUE_NOT_OFFERED = _("{value} is not an offered face value; choose one of: {values}.")
FACE_VALUE_NOT_A_NUMBER = _("Must be a face value such as 50.")
ACCOUNT_DOES_NOT_FIT = _("{account} is not a valid account for {product}.")
DUPLICATE_ACCOUNT = _("{account} is also on row {other}: it will be topped up twice.")
CANNOT_RETRY = _("Only a failed top-up whose refund was refused can be retried; this one is {status}.")
UPSTREAM_FAILED = _("The top-up provider could not top up this account, after several attempts.")
