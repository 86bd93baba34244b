"""System checks of the website checkout."""

from django.conf import settings
from django.core import checks

from orders.web.forms import row_inputs


@checks.register()
def checkout_fits_the_upload_limit(app_configs=None, **kwargs):
    """Every order type adds inputs to every checkout row; a full checkout must still be accepted."""
    needed = settings.BATCH_MAX_ROWS * len(row_inputs()) + 100
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if limit is not None and needed > limit:
        return [
            checks.Warning(
                f"A checkout of BATCH_MAX_ROWS={settings.BATCH_MAX_ROWS} rows posts about {needed} fields, "
                f"more than DATA_UPLOAD_MAX_NUMBER_FIELDS={limit}: Django would refuse it.",
                hint="Raise DATA_UPLOAD_MAX_NUMBER_FIELDS in config/settings.py.",
                id="orders.W001",
            )
        ]
    return []
