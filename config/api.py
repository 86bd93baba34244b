"""DRF glue shared by every app's API: token authentication, strict pagination, a renderer that cannot fail.

Errors: config.errors; parsing: config.json_input; throttling: config.throttling; the schema: config.openapi.
"""

import re

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, pagination, renderers

from config.inputs import text_problem

PAGE_NOT_A_NUMBER = _("Must be a whole number of at least 1.")
_PAGE = re.compile(r"[0-9]{1,9}")


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=N` with N ≥ 1. Anything else is a 400 naming the parameter (DRF answers 404 "Invalid page" to
    `?page=abc` and treats `?page=` as the first page); a page past the end stays a 404."""

    last_page_strings = ()  # "?page=last" would contradict the schema's integer

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and (not _PAGE.fullmatch(raw) or int(raw) < 1):
            raise exceptions.ValidationError({self.page_query_param: [str(PAGE_NOT_A_NUMBER)]})
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": 999_999_999}
        return parameters


class JSONRenderer(renderers.JSONRenderer):
    """DRF's renderer (UTF-8, readable Chinese), falling back to ASCII escapes for text UTF-8 cannot encode.

    The edge checks keep lone surrogates out of what is stored and echoed; this is the belt to those braces:
    an answer must never become a 500 because it quotes what someone sent.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            self.ensure_ascii = True  # type: ignore[misc]  # this renderer only, for this answer
            return super().render(data, accepted_media_type, renderer_context)


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's, with the key checked before it is looked up: a NUL in it is a 401, not a database error."""

    def authenticate_credentials(self, key):
        if len(key) > 64 or text_problem(key):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return super().authenticate_credentials(key)
