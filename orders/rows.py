"""Validation of one submitted row, shared by every order type.

Plain Python rather than a DRF serializer per row: a 5,000-row submission must be accepted in well
under a second, and the same checks serve the API, the website formset and the admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from config import inputs
from orders import messages
from orders.registry import RowErrors

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise

REFERENCE_MAX_LENGTH = 64


class RowCleaner:
    """Reads fields out of one raw row, collecting normalised values in `data` and problems in `errors`."""

    def __init__(self, index: int, raw: dict[str, Any]):
        self.index = index
        self.raw = raw
        self.data: dict[str, Any] = {}
        self.errors: RowErrors = {}

    @property
    def is_valid(self) -> bool:
        return not self.errors

    def error(self, field: str, message: str | StrPromise) -> None:
        self.errors.setdefault(field, []).append(str(message))

    def has_error(self, field: str) -> bool:
        return field in self.errors

    def text(self, field: str, *, max_length: int, required: bool = True) -> str | None:
        value = self.raw.get(field)
        if value is None or value == "":
            if required:
                self.error(field, messages.REQUIRED)
            return None
        if isinstance(value, (int,)) and not isinstance(value, bool):
            value = str(value)  # an account or other identifier sent as a JSON number
        if not isinstance(value, str):
            self.error(field, messages.NOT_TEXT)
            return None
        problem = inputs.text_problem(value)
        if problem:
            self.error(field, problem)
            return None
        # Measured as sent, as the OpenAPI schema's maxLength is.
        if len(value) > max_length:
            self.error(field, str(messages.TOO_LONG).format(max=max_length))
            return None
        value = value.strip()
        if not value:
            self.error(field, messages.BLANK)
            return None
        return value

    def whole_number(self, field: str, *, min_value: int, max_value: int, default: int | None = None) -> int | None:
        value = self.raw.get(field)
        if value is None or value == "":
            if default is None:
                self.error(field, messages.REQUIRED)
            return default
        if isinstance(value, str):
            value = inputs.whole_number_from_text(value)  # None, refused below, unless a short ASCII numeral
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(field, messages.NOT_WHOLE_NUMBER)
            return None
        if value < min_value:
            self.error(field, str(messages.TOO_SMALL).format(min=min_value))
            return None
        if value > max_value:
            self.error(field, str(messages.TOO_LARGE).format(max=max_value))
            return None
        return value

    def reject_unknown_fields(self, allowed: set[str]) -> None:
        # A misspelt field ("qty") silently ignored would place the wrong order.
        for field in self.raw:
            if field not in allowed:
                self.error(inputs.shown(str(field)), messages.UNKNOWN_FIELD)


# What the methods above accept, as JSON Schema (OpenAPI 3.1) for the API's row shapes: an order type
# describes its fields with these, so that its schema and its checks cannot drift apart.


def text_schema(*, max_length: int, required: bool = True) -> dict:
    types = ["string", "integer"] if required else ["string", "integer", "null"]
    return {"type": types, "maxLength": max_length}


def whole_number_schema(*, min_value: int, max_value: int, default: int | None = None) -> dict:
    # Strings are numerals (refused past inputs.MAX_NUMBER_LENGTH); "" and null mean the default.
    pattern = f"^({inputs.WHOLE_NUMBER})?$" if default is not None else f"^{inputs.WHOLE_NUMBER}$"
    types = ["integer", "string", "null"] if default is not None else ["integer", "string"]
    schema = {"type": types, "minimum": min_value, "maximum": max_value, "pattern": pattern}
    if default is not None:
        schema["default"] = default
    return schema


def decimal_schema() -> dict:
    return {"type": ["number", "string"], "pattern": f"^{inputs.DECIMAL}$"}
