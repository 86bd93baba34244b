"""One shape for every error the API and the gateway webhook answer, whoever refuses the request.

    {"detail": "<what went wrong, for people>", "code": "<the same, for machines>", ...}

Validation errors add the fields they concern next to "detail" and "code" ({"phone": ["..."]}), and a
refused batch adds "rows" ([{"index", "errors": {field: [...]}}] or, for the list as a whole, [messages]).

Refusals come from three layers, and each answers in this shape on machine paths (/api/, /payments/webhooks/):
DRF views (`api_exception_handler`), Django itself before or around a view (the handler400/403/404/500 views,
CSRF_FAILURE_VIEW, and `MachineErrorsMiddleware` for the rest, e.g. a 405 from require_POST), and the edge
checks that refuse a request before any view runs (`EdgeRefusalMiddleware`). The website keeps HTML pages.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import BadRequest, DisallowedHost, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views import defaults
from django.views.csrf import csrf_failure as django_csrf_failure
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.inputs import text_problem
from config.json_input import RequestTooLarge

logger = logging.getLogger(__name__)

MACHINE_PATH_PREFIXES = ("/api/", "/payments/webhooks/")

INVALID_INPUT = _("Invalid input.")
BAD_CHARACTERS = _("The address may not contain the NUL character or unpaired surrogates.")
DISALLOWED_HOST = _("This host name is not served here.")
DATABASE_UNAVAILABLE = _("The database is briefly unavailable; nothing was changed. Try again in a few seconds.")
# A dropped or refused database connection: transient, so the client is told to come back, not that we failed.
DATABASE_ERRORS = (OperationalError, InterfaceError)
CSRF_FAILED = _("CSRF check failed: send the CSRF token with a session, or use token authentication.")

# The answer for a status when nothing more specific is known.
DEFAULTS: dict[int, tuple[str, object]] = {
    400: ("bad_request", _("Bad request.")),
    401: ("not_authenticated", _("Authentication credentials were not provided.")),
    403: ("permission_denied", _("You do not have permission to perform this action.")),
    404: ("not_found", _("Not found.")),
    405: ("method_not_allowed", _("This method is not allowed here.")),
    406: ("not_acceptable", _("Cannot answer in the format the Accept header asks for.")),
    409: ("conflict", _("The request conflicts with the current state.")),
    413: ("request_too_large", _("The request body is too large.")),
    415: ("unsupported_media_type", _("Send the body as application/json.")),
    429: ("throttled", _("Too many requests; try again later.")),
    500: ("server_error", _("An error on our side; it has been logged.")),
}
# Headers of an HTML error response that still matter once it is JSON.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PATH_PREFIXES)


def _default(status: int) -> tuple[str, str]:
    if status in DEFAULTS:
        code, detail = DEFAULTS[status]
        return code, str(detail)
    # Not `status in HTTPStatus`: Python 3.11 raises TypeError for an int there.
    try:
        return "error", HTTPStatus(status).phrase
    except ValueError:
        return "error", "Error."


def error_body(status: int, detail=None, code: str | None = None, **fields) -> dict:
    default_code, default_detail = _default(status)
    return {"detail": str(detail) if detail is not None else default_detail, "code": code or default_code, **fields}


def json_error(status: int, detail=None, code: str | None = None, **fields) -> JsonResponse:
    """An error answer for a plain Django view (the webhook, the handlers)."""
    # ASCII escapes (json's default): a message quoting someone's lone surrogate can still be encoded.
    return JsonResponse(error_body(status, detail, code, **fields), status=status)


def api_error(status: int, detail=None, code: str | None = None, **fields) -> Response:
    """An error answer for a DRF view that refuses without raising."""
    return Response(error_body(status, detail, code, **fields), status=status)


# --- DRF -----------------------------------------------------------------------------------------


def api_exception_handler(exc, context):
    """DRF's handler, with Django's too-large body as a 413, and every body put in the one shape."""
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    if isinstance(exc, DATABASE_ERRORS):
        return _database_unavailable(exc, Response)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's handler500 answers it (in this shape on machine paths)
    response.data = _shaped(exc, response.data, response.status_code)
    return response


def _shaped(exc, data, status: int) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        if "detail" in fields and "code" in fields:
            return fields  # already shaped by a view
        return error_body(status, INVALID_INPUT, "invalid", **fields)
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
    detail = data.get("detail") if isinstance(data, dict) else None
    return error_body(status, detail, code if isinstance(code, str) else None)


def _database_unavailable(exc, response_class):
    logger.warning("database unavailable, answered 503: %s", exc)
    response = response_class(error_body(503, DATABASE_UNAVAILABLE, "database_unavailable"), status=503)
    response["Retry-After"] = "5"
    return response


# --- Django's handlers (config/urls.py) ----------------------------------------------------------


def bad_request(request, exception=None):
    if not is_machine_path(request.path):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return json_error(413)
    if isinstance(exception, DisallowedHost):
        return json_error(400, DISALLOWED_HOST, "disallowed_host")
    return json_error(400)


def permission_denied(request, exception=None):
    if not is_machine_path(request.path):
        return defaults.permission_denied(request, exception)
    return json_error(403)


def page_not_found(request, exception=None):
    if not is_machine_path(request.path):
        return defaults.page_not_found(request, exception)
    return json_error(404)


def server_error(request):
    if not is_machine_path(request.path):
        return defaults.server_error(request)
    return json_error(500)


def csrf_failure(request, reason=""):
    if not is_machine_path(request.path):
        return django_csrf_failure(request, reason)
    return json_error(403, CSRF_FAILED, "csrf_failed")


# --- Middleware ----------------------------------------------------------------------------------


class MachineErrorsMiddleware:
    """Outermost: any error answer on a machine path that is not JSON yet (Django's 405 from require_POST, a
    page from a handler that ran before URL resolution) becomes JSON in the one shape."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_machine_path(request.path)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            shaped = json_error(response.status_code)
            for header in _KEPT_HEADERS:
                if header in response:
                    shaped[header] = response[header]
            return shaped
        return response

    def process_exception(self, request, exception):
        # The webhook and other plain views on machine paths: a dropped database connection is a 503 the
        # caller retries (a gateway redelivers), not a 500.
        if is_machine_path(request.path) and isinstance(exception, DATABASE_ERRORS):
            return _database_unavailable(exception, JsonResponse)
        return None


class EdgeRefusalMiddleware:
    """Refuses, before any view, what no view could handle: NUL or unpaired surrogates in the path or the query
    (PostgreSQL refuses them in a lookup), and on machine paths a declared body larger than
    DATA_UPLOAD_MAX_MEMORY_SIZE (413 without reading it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        machine = is_machine_path(request.path)
        if _has_bad_characters(request):
            return (
                json_error(400, BAD_CHARACTERS, "bad_characters")
                if machine
                else defaults.bad_request(request, BadRequest())
            )
        if machine and _declared_length(request) > (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or float("inf")):
            return json_error(413)
        return self.get_response(request)


def _has_bad_characters(request) -> bool:
    if text_problem(request.path):
        return True
    return any(text_problem(key) or any(text_problem(value) for value in values) for key, values in request.GET.lists())


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
