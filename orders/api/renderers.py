"""Renderers of the batch export (`GET /api/v1/batches/{id}/export/?format=csv|xlsx`).

The file itself is streamed by the view; a renderer is only reached by an answer that is not the file (a batch
that is not yours, a missing login), which is then sent as JSON like every other API error.
"""

from django.http import Http404
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer

from orders.export import XLSX_CONTENT_TYPE


class _FileRenderer(BaseRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return JSONRenderer().render(data)


class CSVRenderer(_FileRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"


class XLSXRenderer(_FileRenderer):
    media_type = XLSX_CONTENT_TYPE
    format = "xlsx"
    charset = None


class FileFormatNegotiation(DefaultContentNegotiation):
    """The file's format comes from `?format=` (CSV when absent), whatever the Accept header says."""

    def select_renderer(self, request, renderers, format_suffix=None):
        # Absent means CSV; present but empty or unknown is a format we do not make (404, as documented).
        wanted = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE, "csv")
        for renderer in renderers:
            if renderer.format == wanted:
                return renderer, renderer.media_type
        raise Http404
