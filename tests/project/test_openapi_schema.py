"""The OpenAPI schema tells the whole truth (issue 12): every error status with its body, the rows as a oneOf
discriminated on kind and built from the order-type registry, and required parameters marked required."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from orders import registry
from orders.registry import OrderType
from orders.rows import text_schema


def generate() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def schema(db):
    return generate()


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_documents_its_errors_in_the_one_shape(schema):
    for name, operation in operations(schema):
        responses = operation["responses"]
        # An operation anyone may call (the token endpoint) cannot answer 401 or 403.
        needs_login = ("401", "403") if operation.get("security") else ()
        for status in ("400", "406", "413", "429", *needs_login):
            assert status in responses, f"{name} does not document {status}"
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref in ("#/components/schemas/Error", "#/components/schemas/ValidationError"), name
        assert responses["429"]["headers"]["Retry-After"]["required"] is True
        if "{" in name:
            assert "404" in responses, name
        if "requestBody" in operation:
            assert "415" in responses, name


def test_the_error_shapes_require_detail_and_code(schema):
    components = schema["components"]["schemas"]
    for name in ("Error", "ValidationError"):
        assert set(components[name]["required"]) == {"detail", "code"}


def test_rows_are_a_one_of_discriminated_on_kind_for_every_registered_type(schema):
    submit = schema["components"]["schemas"]["BatchSubmit"]["properties"]["rows"]
    row = schema["components"]["schemas"]["Row"]

    assert submit["items"] == {"$ref": "#/components/schemas/Row"}
    assert submit["minItems"] == 1
    assert row["discriminator"]["propertyName"] == "kind"
    assert sorted(row["discriminator"]["mapping"]) == registry.kinds()
    assert {"game", "goods", "mobile"} <= set(registry.kinds())  # and the tests' own ticket type
    mobile = schema["components"]["schemas"]["MobileRow"]
    assert mobile["required"] == ["kind", "phone", "face_value"]
    assert mobile["additionalProperties"] is False
    assert set(mobile["properties"]) == {"kind", "phone", "face_value", "reference"}


class VoucherType(OrderType):
    kind = "gift_voucher"
    label = "Gift voucher"
    fields = ("code",)

    def field_schemas(self):
        return {"code": text_schema(max_length=20)}

    def required_fields(self):
        return ("code",)


def test_a_newly_registered_order_type_appears_without_touching_orders(db):
    registry.register(VoucherType())
    try:
        schema = generate()
    finally:
        registry._types.pop("gift_voucher")

    row = schema["components"]["schemas"]["Row"]
    assert row["discriminator"]["mapping"]["gift_voucher"] == "#/components/schemas/GiftVoucherRow"
    voucher = schema["components"]["schemas"]["GiftVoucherRow"]
    assert voucher["required"] == ["kind", "code"]
    assert voucher["properties"]["code"]["maxLength"] == 20


def test_the_lookup_requires_its_phone_parameter(schema):
    (phone,) = schema["paths"]["/api/v1/recharge/lookup/"]["get"]["parameters"]

    assert (phone["name"], phone["in"], phone["required"]) == ("phone", "query", True)


def test_the_page_parameter_is_a_positive_integer(schema):
    page = next(p for p in schema["paths"]["/api/v1/batches/"]["get"]["parameters"] if p["name"] == "page")

    assert page["schema"]["type"] == "integer" and page["schema"]["minimum"] == 1
