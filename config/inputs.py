"""Edge checks for text and numbers that arrive from outside: the one place that knows what PostgreSQL and
Python refuse, so that the API rows, the checkout, paste/CSV import and the gateway webhook refuse it the same
way, with a 400, before it reaches the database, a conversion or a comparison.

- Text: PostgreSQL refuses the NUL character in text and JSON; a lone surrogate (U+D800 to U+DFFF, which JSON's
  "\\ud800" escape produces) cannot be encoded as UTF-8, so the database driver and the JSON renderer fail on it.
- Whole numbers: int() refuses more than 4,300 digits and is quadratic before that; a bounded ASCII pattern is
  checked first (str.isdigit() also accepts "²", which int() then refuses).
- Decimals: "1e400" is a finite Decimal that quantize() refuses; length and exponent are bounded before use.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext_lazy as _

NUL_CHARACTER = _("May not contain the NUL character.")
LONE_SURROGATE = _("May not contain an unpaired surrogate (an invalid \\ud800-\\udfff escape).")
NOT_A_DECIMAL = _("Must be a decimal number.")

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# Spaces and tabs around a number are forgiven. The OpenAPI schema states the same patterns (anchored with
# ^ and $ there; matched whole here, since Python's $ also matches before a final newline).
WHOLE_NUMBER = r"[ \t]*[+-]?[0-9]+[ \t]*"
DECIMAL = r"[ \t]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t]*"
_WHOLE_NUMBER = re.compile(WHOLE_NUMBER)
_DECIMAL = re.compile(DECIMAL)
# Longer than any quantity or amount this shop handles, far below what makes int() or Decimal() slow.
MAX_NUMBER_LENGTH = 40
MAX_DECIMAL_EXPONENT = 18
SHOWN_MAX_LENGTH = 64


class InputRefused(ValueError):
    """A value that must not go further; the message is for people."""


def text_problem(value: str) -> str | None:
    """Why this text cannot be stored or compared, or None when it can."""
    if value.isascii():
        if "\x00" in value:
            return str(NUL_CHARACTER)
        return None
    found = _BAD_TEXT.search(value)
    if found is None:
        return None
    return str(NUL_CHARACTER) if found.group() == "\x00" else str(LONE_SURROGATE)


def reject_bad_text(value: str) -> None:
    """A validator for Django and DRF CharFields (Django's own refuses NUL only)."""
    problem = text_problem(value)
    if problem:
        from django.core.exceptions import ValidationError

        raise ValidationError(problem, code="bad_characters")


def whole_number_from_text(text: str) -> int | None:
    """The integer a short ASCII numeral stands for, or None when the text is not one."""
    if len(text) > MAX_NUMBER_LENGTH or not _WHOLE_NUMBER.fullmatch(text):
        return None
    return int(text.strip(" \t"))


def decimal_from_text(text: str, *, max_exponent: int = MAX_DECIMAL_EXPONENT) -> Decimal:
    """A finite Decimal whose magnitude and precision stay within 10**±max_exponent; raises InputRefused."""
    if len(text) > MAX_NUMBER_LENGTH or not _DECIMAL.fullmatch(text):
        raise InputRefused(str(NOT_A_DECIMAL))
    try:
        value = Decimal(text.strip(" \t"))
    except InvalidOperation:  # the pattern admits only what Decimal reads; this is a belt for the braces
        raise InputRefused(str(NOT_A_DECIMAL)) from None
    exponent = value.as_tuple().exponent  # an int: the pattern admits no NaN or infinity, whose exponent is a letter
    if value and (value.adjusted() > max_exponent or (isinstance(exponent, int) and exponent < -max_exponent)):
        raise InputRefused(str(NOT_A_DECIMAL))
    return value


def first_bad_text(value: Any, *, path: str = "") -> tuple[str, str] | None:
    """The first string (key or value) anywhere in decoded JSON that cannot be stored: (path, problem).

    The caller has bounded the nesting (config.json_input), so the walk cannot recurse too deep.
    """
    if isinstance(value, str):
        problem = text_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            item_path = f"{path}.{shown(key)}" if path else shown(key)
            problem = text_problem(key)
            if problem:
                return item_path, problem
            found = first_bad_text(item, path=item_path)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = first_bad_text(item, path=f"{path}[{index}]")
            if found:
                return found
    return None


def shown(value: str, *, max_length: int = SHOWN_MAX_LENGTH) -> str:
    """Someone's text made safe to echo in a message or store as a key: bad characters escaped, length bounded."""
    if len(value) > max_length:
        value = value[:max_length] + "…"
    if text_problem(value) is None:
        return value
    return _BAD_TEXT.sub(lambda found: f"\\u{ord(found.group()):04x}", value)


def storable(value: Any) -> Any:
    """Decoded JSON with every bad character escaped, so that a refused row can still be kept for people to see."""
    if isinstance(value, str):
        return value if text_problem(value) is None else _BAD_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value
