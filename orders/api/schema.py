"""The OpenAPI shapes of submitted rows, built from the order-type registry: one component per kind
(`GoodsRow`, `MobileRow`, ...) and `Row`, a `oneOf` discriminated on `kind`. A type registered by another
app appears here without any change to orders; it describes its own fields (OrderType.field_schemas)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent

from orders import registry
from orders.rows import REFERENCE_MAX_LENGTH, text_schema


def row_component_name(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.replace("-", "_").split("_")) + "Row"


def row_schema(order_type: registry.OrderType) -> dict:
    properties = {
        "kind": {"type": "string", "enum": [order_type.kind]},
        **order_type.field_schemas(),
        "reference": {
            **text_schema(max_length=REFERENCE_MAX_LENGTH, required=False),
            "description": "Your own id for this row, unique among your orders; copied onto its order.",
        },
    }
    schema = {
        "type": "object",
        "properties": properties,
        "required": ["kind", *order_type.required_fields()],
        # Unknown fields are refused: a misspelt "qty" must not be ignored.
        "additionalProperties": False,
    }
    if order_type.label:
        schema["description"] = str(order_type.label)
    return schema


class RowsFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "orders.api.serializers.RowsField"

    def map_serializer_field(self, auto_schema, direction):
        mapping = {}
        for order_type in registry.all_types():
            component = ResolvedComponent(
                name=row_component_name(order_type.kind),
                type=ResolvedComponent.SCHEMA,
                object=f"row:{order_type.kind}",
                schema=row_schema(order_type),
            )
            auto_schema.registry.register_on_missing(component)
            mapping[order_type.kind] = component.ref["$ref"]
        row = ResolvedComponent(
            name="Row",
            type=ResolvedComponent.SCHEMA,
            object="row",
            schema={
                "oneOf": [{"$ref": ref} for ref in mapping.values()],
                "discriminator": {"propertyName": "kind", "mapping": mapping},
            },
        )
        auto_schema.registry.register_on_missing(row)
        return {
            "type": "array",
            "items": row.ref,
            "minItems": 1,
            "maxItems": settings.BATCH_MAX_ROWS,
            "description": "One object per order; every row is checked and each problem named by row and field.",
        }
