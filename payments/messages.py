"""Messages people see about payments and refunds. Tests assert on these constants."""

from django.utils.translation import gettext_lazy as _

ORDER_NOT_PAID = _("This order is not covered by a payment.")
PAYMENT_NOT_REFUNDABLE = _("Only a paid payment can be refunded; this one is {status}.")
ALREADY_REFUNDED = _("Order {number} has already been refunded.")
REFUND_EXCEEDS_PAYMENT = _("The refund would exceed what is left of the payment.")
REFUND_REQUESTS_USED_UP = _(
    "{rail} takes at most {limit} refunds of one payment, and this payment has used them all: refund this order "
    "outside the rail."
)
GATEWAY_REFUSED_REFUND = _("The payment gateway refused the refund: {reason}")
PAID_TOO_LATE = _(
    "The gateway reports this payment paid, but it was already {status}; what it captured is refunded automatically."
)
UNHONOURED_REFUND_REASON = _("Paid after the payment was {status}: everything captured is returned.")
ORDER_REQUIRED = _("Name the order to refund.")
ORDER_NOT_IN_PAYMENT = _("Order {order} is not part of this payment.")
PAID_TWICE = _(
    "Paid again on attempt {reference} after the payment had succeeded; what that attempt captured is refunded "
    "automatically."
)
UNHONOURED_TWICE_REASON = _("Paid a second time: everything the second attempt captured is returned.")
RAIL_FAILED_REFUND = _("The payment rail reports that the refund failed.")
REFUND_FAILED_NOTE = _("Refund {reference} failed: {reason}")
PAYMENT_NOT_PAYABLE = _("This payment can no longer be paid; it is {status}.")
UNKNOWN_METHOD = _("Choose one of the ways to pay on offer.")
RAIL_UNAVAILABLE = _("{rail} cannot be reached just now; nothing was charged. Try again, or choose another way to pay.")
RAIL_REFUSED_START = _("{rail} would not start this payment; nothing was charged. Choose another way to pay.")
