"""A batch's orders and outcomes as a file people can take away: CSV (streamed) or XLSX.

One line per submitted row, in row order: the order it became and how that order ended (with why it was
refunded), or why it could not be placed, or why it was skipped. Written in the reader's language; money
facts (refunds) come from the billing side, descriptions from each order's type.

Rows and orders are read in chunks, side by side in row order, so a 5,000-row batch never sits in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from orders import billing, registry
from orders.models import Batch, BatchRow, Order

CHUNK = 1000
# Lines written per piece of the streamed response.
LINES_PER_PIECE = 200
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel reads a CSV file as UTF-8 only when it starts with the byte order mark.
BOM = "\ufeff"

COLUMNS = [
    gettext_lazy("Row"),
    gettext_lazy("Order"),
    gettext_lazy("Reference"),
    gettext_lazy("Kind"),
    gettext_lazy("What"),
    gettext_lazy("Detail"),
    gettext_lazy("Amount"),
    gettext_lazy("Status"),
    gettext_lazy("Reason"),
    gettext_lazy("Refunded"),
]
# A cell a spreadsheet would run as a formula (CSV injection): what shoppers typed is written as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_filename(batch: Batch, extension: str) -> str:
    return f"batch-{str(batch.pk)[:8]}-{batch.created_at:%Y%m%d}.{extension}"


def batch_export_lines(batch: Batch) -> Iterator[list]:
    """The header, then one line per submitted row: text cells, the row number and the amounts as numbers."""
    yield [str(column) for column in COLUMNS]
    refunds = billing.billing().refunds(batch=batch)
    rows = BatchRow.objects.filter(batch=batch).order_by("row_index").iterator(chunk_size=CHUNK)
    orders = Order.objects.filter(batch=batch).order_by("row_index").iterator(chunk_size=CHUNK)
    order = next(orders, None)
    labels = {"skipped": _("skipped"), "pending": _("pending"), "failed": _("could not be placed")}
    for row in rows:
        if order is not None and order.row_index == row.row_index:
            yield _order_line(row, order, refunds.get(order.pk))
            order = next(orders, None)
        else:
            yield _row_line(row, labels)


def _order_line(row: BatchRow, order: Order, refund) -> list:
    description = registry.describe(order)
    return [
        row.row_index + 1,
        order.number,
        _text(order.reference or ""),
        registry.label(order.kind),
        _text(description.title),
        _text(description.detail),
        order.amount,
        str(order.get_status_display()),
        _text(refund.reason_text) if refund is not None else "",
        refund.amount if refund is not None and refund.succeeded else "",
    ]


def _row_line(row: BatchRow, labels: dict) -> list:
    """A row without an order: it could not be placed, is still waiting, or was skipped at submission."""
    order_type = registry.get(row.kind)
    if row.outcome == BatchRow.Outcome.REJECTED:
        # As sent, which may be anything: its values, without judging them.
        data = row.data if isinstance(row.data, dict) else {}
        what = " · ".join(
            str(value)
            for name, value in data.items()
            if name not in ("kind", "reference") and isinstance(value, (str, int, float)) and str(value) != ""
        )[:200]
        sent = data.get("reference")
        reference = sent if isinstance(sent, str) else ""
        reason = " ".join(message for messages in row.errors_text.values() for message in messages)
        status = labels["skipped"]
        detail = ""
    else:
        description = order_type.describe_row(row.data) if order_type is not None else None
        what, detail = (description.title, description.detail) if description else ("", "")
        reference = row.reference or ""
        reason = row.failure_text if row.outcome == BatchRow.Outcome.FAILED else ""
        status = labels["failed"] if row.outcome == BatchRow.Outcome.FAILED else labels["pending"]
    return [
        row.row_index + 1,
        "",
        _text(reference),
        registry.label(row.kind) if row.kind else "",
        _text(what),
        _text(detail),
        "",
        str(status),
        _text(reason),
        "",
    ]


def _text(value: str) -> str:
    value = str(value)
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


class _Line:
    """A file-like object that hands back what csv.writer writes to it, instead of keeping it."""

    def write(self, text: str) -> str:
        return text


def batch_export_csv(batch: Batch) -> Iterator[bytes]:
    """The CSV file in pieces, for a StreamingHttpResponse: UTF-8 with a byte order mark, CRLF line ends."""
    writer = csv.writer(_Line())
    piece = [BOM]
    for line in batch_export_lines(batch):
        piece.append(writer.writerow(line))
        if len(piece) >= LINES_PER_PIECE:
            yield "".join(piece).encode("utf-8")
            piece = []
    if piece:
        yield "".join(piece).encode("utf-8")


def batch_export_xlsx(batch: Batch) -> bytes:
    """The same lines as an Excel workbook, written in openpyxl's write-only mode (one row at a time)."""
    from openpyxl import Workbook  # only the XLSX download needs it

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_("Orders")[:31])
    for line in batch_export_lines(batch):
        sheet.append(line)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


FORMATS = ("csv", "xlsx")


def batch_export_response(batch: Batch, file_format: str) -> HttpResponseBase:
    """The download, CSV streamed as it is written; `file_format` is one of FORMATS."""
    response: HttpResponseBase
    if file_format == "xlsx":
        response = HttpResponse(batch_export_xlsx(batch), content_type=XLSX_CONTENT_TYPE)
    else:
        response = StreamingHttpResponse(batch_export_csv(batch), content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{export_filename(batch, file_format)}"'
    return response
