"""Turning a pasted list or an uploaded CSV file into checkout rows (the seed's "add components in bulk").

Each line is offered to the order types in their import order (`registry.importers()`); the first
that claims it turns it into a raw row. Which formats exist is up to the types (the import form's help
text lists their hints). Nothing is validated here: the rows go through the same validation as any other.
"""

from __future__ import annotations

import csv
import io

from config import inputs
from orders import registry
from orders.models import Product
from orders.registry import ImportContext

MAX_IMPORT_BYTES = 2 * 1024 * 1024
SKU_MAX_LENGTH: int = Product._meta.get_field("sku").max_length  # type: ignore[assignment]  # set on the model


def rows_from_text(text: str, *, options: dict[str, dict] | None = None) -> list[dict]:
    """`options` are the import form's options by kind (see OrderType.import_options)."""
    lines = []
    for fields in _lines(text):
        fields = [field.strip() for field in fields]
        while fields and not fields[-1]:
            fields.pop()
        if fields and fields[0]:
            lines.append(fields)
    importers = registry.importers()
    headers = {"kind"}.union(*(order_type.import_headers for order_type in importers))
    lines = [fields for fields in lines if fields[0].lower() not in headers]
    # One query for the products of every line, not one per line.
    # The database refuses NUL and lone surrogates in a query; no SKU has them, nor more than 64 characters.
    firsts = {fields[0] for fields in lines if len(fields[0]) <= SKU_MAX_LENGTH and not inputs.text_problem(fields[0])}
    products = {product.sku: product for product in Product.objects.filter(sku__in=firsts)} if firsts else {}
    context = ImportContext(products=products, options=options or {})
    rows = []
    for fields in lines:
        for order_type in importers:
            row = order_type.import_row(fields, context)
            if row is not None:
                rows.append(row)
                break
    return rows


def _lines(text: str):
    """The CSV lines; a field past csv's size limit (128 KiB) ends the list instead of the request."""
    reader = csv.reader(io.StringIO(text))
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise ValueError("not CSV") from None


def text_from_upload(upload) -> str:
    data = upload.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise ValueError("too large")
    for encoding in ("utf-8-sig", "gb18030"):  # spreadsheets saved in China are often GB18030
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("not text")
