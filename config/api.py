"""DRF glue shared by every app's API."""

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    # DRF already answers parse errors, validation errors, 404s and permission errors with 4xx;
    # anything else is a bug and must surface as one rather than be disguised.
    return drf_exception_handler(exc, context)
