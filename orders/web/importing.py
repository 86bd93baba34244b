"""Turning a pasted list or an uploaded CSV file into checkout rows (the seed's "add components in bulk").

Lines are `phone[,face value]`, `SKU,quantity` or `SKU,account,quantity`. A line is read as a phone
number when its first field is made of digits, spaces, dashes and an optional +86. Nothing is validated
here: the rows go through the same validation as any other.
"""

from __future__ import annotations

import csv
import io
import re

PHONE_LIKE = re.compile(r"^\+?[\d\s-]{7,20}$")
MAX_IMPORT_BYTES = 2 * 1024 * 1024
HEADER_WORDS = {"phone", "sku", "kind", "手机号", "号码"}


def rows_from_text(text: str, *, default_face_value: str = "", products_kind=None) -> list[dict]:
    """`products_kind(sku) -> kind or None` tells goods from game SKUs."""
    rows = []
    for fields in _lines(text):
        fields = [field.strip() for field in fields]
        while fields and not fields[-1]:
            fields.pop()
        if not fields or not fields[0] or fields[0].lower() in HEADER_WORDS:
            continue
        rows.append(_row(fields, default_face_value, products_kind))
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


def _row(fields: list[str], default_face_value: str, products_kind) -> dict:
    first = fields[0]
    if PHONE_LIKE.match(first):
        row = {"kind": "mobile", "phone": first}
        face_value = fields[1] if len(fields) > 1 else default_face_value
        if face_value:
            row["face_value"] = face_value.lstrip("¥")
        return row
    kind = (products_kind(first) if products_kind else None) or "goods"
    if kind == "game":
        row = {"kind": "game", "sku": first, "account": fields[1] if len(fields) > 1 else ""}
        row["quantity"] = fields[2] if len(fields) > 2 else "1"
        return row
    return {"kind": kind, "sku": first, "quantity": fields[1] if len(fields) > 1 else "1"}


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
