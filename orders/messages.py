"""Messages people see when a submission or a row is refused. Tests assert on these constants.

Each is a format string; call `.format(...)` with the named values after translating it. Messages
count rows from 1, as people do; the API's "index" fields count from 0.
"""

from django.utils.translation import gettext_lazy as _

# Fields of a row
REQUIRED = _("This field is required.")
NOT_TEXT = _("Must be text.")
BLANK = _("May not be blank.")
TOO_LONG = _("At most {max} characters.")
NOT_WHOLE_NUMBER = _("Must be a whole number.")
TOO_SMALL = _("Must be at least {min}.")
TOO_LARGE = _("Must be at most {max}.")
UNKNOWN_FIELD = _("Unknown field.")
ROW_NOT_OBJECT = _("Each row must be a JSON object.")
UNKNOWN_KIND = _("Unknown kind {kind}; expected one of: {kinds}.")
UNKNOWN_SKU = _("No product has the SKU {sku}.")
WRONG_KIND_SKU = _("{sku} is not sold as {kind}.")
PRODUCT_INACTIVE = _("{sku} is not on sale.")
REFERENCE_USED = _("Reference {reference} is already used by another order.")
REFERENCE_REPEATED = _("Reference {reference} is also on row {other}.")

# The submission as a whole
NO_ROWS = _("Submit at least one row.")
TOO_MANY_ROWS = _("At most {max} rows per batch; this one has {count}.")
ROWS_NOT_LIST = _("Must be a list of rows.")
ROWS_INVALID = _("{count} of {total} rows are invalid; fix them or submit with skip_invalid to place the rest.")
ROWS_REFUSED = _("The rows cannot be accepted.")
ALL_ROWS_INVALID = _("Every row is invalid; there is nothing to place.")
IDEMPOTENCY_CONFLICT = _("This Idempotency-Key was used with a different request body.")
IDEMPOTENCY_KEY_TOO_LONG = _("The Idempotency-Key header is at most 255 characters.")

# Placing (failures recorded on a row after it was accepted)
OUT_OF_STOCK = _("{sku} is out of stock.")
NOT_ON_SALE_ANYMORE = _("{sku} was taken off sale before the row was placed.")
CANNOT_CANCEL = _("Only a batch awaiting payment can be cancelled; this one is {status}.")
PLACING_ERROR = _("This row could not be placed because of an error on our side; it was not charged.")
FAILURES = {
    "out_of_stock": OUT_OF_STOCK,
    "inactive": NOT_ON_SALE_ANYMORE,
    "reference_used": REFERENCE_USED,
    "placing_error": PLACING_ERROR,
}


def failure_text(code: str, *, sku: str = "", reference: str = "") -> str | None:
    """A placing failure in the current language (the stored message is in the worker's language)."""
    template = FAILURES.get(code)
    return str(template).format(sku=sku, reference=reference) if template is not None else None


# Refunds
REFUNDED_BY_SHOP = _("Refunded by the shop.")

NOTHING_TO_RETRY = _("This batch has no failed rows to place again.")
BATCH_NOT_FINISHED = _("This batch is still placing its rows.")
