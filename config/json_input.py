"""Reading JSON request bodies from outside, for the API (a DRF parser) and the gateway webhook alike.

Python's json module recurses once per nesting level, and so does everything that later walks the result
(the idempotency fingerprint, the renderer): a body nested a thousand levels deep ends in RecursionError.
The nesting is therefore measured on the raw bytes first, outside string literals, and a body deeper than
JSON_MAX_DEPTH is refused before anything recurses. The body's size is bounded by
DATA_UPLOAD_MAX_MEMORY_SIZE, as Django bounds form bodies, and numbers by config.inputs.MAX_NUMBER_LENGTH.
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, parsers

from config.inputs import MAX_NUMBER_LENGTH

TOO_DEEP = _("JSON nested deeper than {max} levels is refused.")
NUMBER_TOO_LONG = _("JSON numbers are limited to {max} characters.")
NOT_UTF8 = _("The body must be UTF-8 encoded JSON.")
TOO_LARGE = _("The request body is larger than {max} bytes.")

# A string literal (escapes included), or an unterminated one up to the end: what is left outside them is
# structure and scalars. Possessive, and never failing once a quote opened, so the scan stays linear.
_STRING_LITERAL = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = bytes(byte for byte in range(256) if byte not in b"[]{}")
_OPENERS = frozenset(b"[{")


class JSONRefused(ValueError):
    """A body that is not acceptable JSON; `code` names the reason for machines."""

    def __init__(self, message: str, code: str = "parse_error"):
        super().__init__(message)
        self.code = code


class BodyTooLarge(Exception):
    pass


def depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether brackets outside string literals nest deeper than `limit`, without recursing."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRING_LITERAL.sub(b"", body).translate(None, _NOT_BRACKET)
    depth = 0
    for byte in brackets:
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _bounded_number(parse):
    def parse_bounded(text: str):
        if len(text) > MAX_NUMBER_LENGTH:
            raise ValueError(str(NUMBER_TOO_LONG).format(max=MAX_NUMBER_LENGTH))
        return parse(text)

    return parse_bounded


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def loads(body: bytes):
    """Decode a JSON body, refusing deep nesting, over-long numbers, NaN/Infinity and non-UTF-8 bytes.

    Raises JSONRefused with a message for people.
    """
    limit = settings.JSON_MAX_DEPTH
    if depth_exceeds(body, limit):
        raise JSONRefused(str(TOO_DEEP).format(max=limit), code="too_deep")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise JSONRefused(str(NOT_UTF8)) from None
    try:
        return json.loads(
            text,
            parse_int=_bounded_number(int),
            parse_float=_bounded_number(float),
            parse_constant=_refuse_constant,
        )
    except ValueError as invalid:  # JSONDecodeError is a ValueError, and so are the number refusals
        raise JSONRefused(f"JSON parse error - {invalid}") from None


def read_bounded(stream) -> bytes:
    """The whole body, or BodyTooLarge once it passes DATA_UPLOAD_MAX_MEMORY_SIZE (read no further)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if stream is None:
        return b""
    body = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(body) > limit:
        raise BodyTooLarge()
    return body


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = _("The request body is too large.")
    default_code = "request_too_large"


class BoundedJSONParser(parsers.JSONParser):
    """DRF's JSON parser with the limits above; every refusal is a 400 (or 413) with the usual error body."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            body = read_bounded(stream)
        except BodyTooLarge:
            raise RequestTooLarge(str(TOO_LARGE).format(max=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)) from None
        try:
            return loads(body)
        except JSONRefused as refused:
            raise exceptions.ParseError(str(refused), code=refused.code) from None
