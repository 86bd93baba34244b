"""The OpenAPI schema tells every answer an operation can give, errors included (config/errors.py shapes them).

Each operation documents, besides what its view declares: 400 (an invalid parameter, or NUL in the address),
401 and 403 (authentication, permission, CSRF with a session), 404 where it has a path parameter or pages,
406 (an Accept header it cannot satisfy), 413 (a body over DATA_UPLOAD_MAX_MEMORY_SIZE), 415 where it takes a
body, and 429 with Retry-After where it is throttled.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for people.")
    code = serializers.CharField(help_text="What went wrong, for machines: not_found, throttled, invalid, ...")

    class Meta:
        ref_name = "Error"


class RowErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The row's position in `rows`, from 0.")
    errors = serializers.DictField(  # type: ignore[assignment]  # only documents a shape; never validates
        child=serializers.ListField(child=serializers.CharField()), help_text="Messages by field name."
    )

    class Meta:
        ref_name = "RowError"


class _RowsErrorField(serializers.ListField):
    """Problems of the rows: one per invalid row, or messages about the list as a whole."""


class ValidationErrorSerializer(ErrorSerializer):
    rows = _RowsErrorField(required=False)

    class Meta:
        ref_name = "ValidationError"


def _validation_error_schema(auto_schema) -> dict:
    row_error = auto_schema.resolve_serializer(RowErrorSerializer, "response").ref
    return {
        "type": "array",
        "items": {"oneOf": [{"type": "string"}, row_error]},
        "description": "Each invalid row with its errors by field, or messages about the list of rows itself.",
    }


class _RowsErrorFieldExtension(OpenApiSerializerFieldExtension):
    target_class = _RowsErrorField

    def map_serializer_field(self, auto_schema, direction):
        return _validation_error_schema(auto_schema)


class _ValidationErrorExtension(OpenApiSerializerExtension):
    """Field errors sit beside detail and code, as lists of messages keyed by field name."""

    target_class = ValidationErrorSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = {"type": "array", "items": {"type": "string"}}
        return schema


RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds until one more request would be accepted.",
        "required": True,
    }
}

ERROR_DESCRIPTIONS = {
    400: "Invalid input: the fields concerned carry their messages.",
    401: "No valid credentials: send `Authorization: Token <key>`.",
    403: "Not allowed for this user, or a session request without its CSRF token.",
    404: "No such object for this user, or no such page.",
    406: "The Accept header asks for a format other than JSON.",
    409: "The request conflicts with the current state.",
    413: "The body is larger than the site accepts.",
    415: "The body is not application/json.",
    429: "Too many requests; Retry-After says when to try again.",
}


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status in self._error_statuses():
            key = str(status)
            if key in responses:
                continue
            serializer = ValidationErrorSerializer if status == 400 else ErrorSerializer
            # Errors are JSON whatever the operation's success renders (the batch export answers CSV).
            responses[key] = self._get_response_for_code(
                OpenApiResponse(serializer, description=ERROR_DESCRIPTIONS[status]), key, ["application/json"]
            )
            if status == 429:
                responses[key]["headers"] = RETRY_AFTER
        return dict(sorted(responses.items()))

    def _error_statuses(self) -> list[int]:
        statuses = [400, 406, 413]
        if self.view.get_authenticators():
            statuses.append(401)
        if any(not isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()) or self.method not in (
            "GET",
            "HEAD",
            "OPTIONS",
        ):
            statuses.append(403)
        if "{" in self.path or (self.method == "GET" and self._is_list_view()):
            statuses.append(404)
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            statuses.append(415)
        if self.view.get_throttles():
            statuses.append(429)
        return statuses


def error_response(status: int, description: str) -> OpenApiResponse:
    """For @extend_schema(responses=...): an error status in the one shape, with what it means there."""
    return OpenApiResponse(ValidationErrorSerializer if status == 400 else ErrorSerializer, description=description)
