from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.openapi import RowErrorSerializer
from orders import billing
from orders.api import schema  # noqa: F401  (registers the rows' OpenAPI shapes)
from orders.models import Batch, BatchRow, Order, Product


class RowsField(serializers.Field):
    """The rows as sent: each is checked by its order type (orders.services), which names the row and field of
    every problem. The JSON parser has already bounded their size, depth and numbers (config.json_input)."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class StrictBooleanField(serializers.BooleanField):
    """true or false only: DRF's own also takes "yes", "on", 1, ... which the schema's boolean does not."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)


class BatchSubmitSerializer(serializers.Serializer):
    rows = RowsField()
    skip_invalid = StrictBooleanField(default=False)


class BatchAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="batch.id")
    status = serializers.CharField(source="batch.status")
    row_count = serializers.IntegerField(source="batch.row_count")
    accepted_rows = serializers.IntegerField(source="batch.accepted_rows")
    rejected_rows = RowErrorSerializer(source="rejected", many=True)
    warnings = serializers.ListField(child=serializers.DictField())
    url = serializers.SerializerMethodField()

    def get_url(self, submission) -> str:
        return self.context["request"].build_absolute_uri(reverse("api:batch-detail", args=[submission.batch.pk]))


class OrderSerializer(serializers.ModelSerializer):
    batch = serializers.UUIDField(source="batch_id", read_only=True)
    sku = serializers.CharField(source="product.sku", default=None, read_only=True, allow_null=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "batch",
            "row_index",
            "kind",
            "status",
            "sku",
            "quantity",
            "unit_price",
            "amount",
            "currency",
            "reference",
            "details",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BatchOrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ["id", "number", "row_index", "kind", "status", "amount", "currency", "reference", "details"]
        read_only_fields = fields


class RowFailureSerializer(serializers.ModelSerializer):
    error = serializers.CharField(source="failure_message")
    code = serializers.CharField(source="failure_code")

    class Meta:
        model = BatchRow
        fields = ["row_index", "code", "error", "reference"]


class RejectedRowSerializer(serializers.ModelSerializer):
    index = serializers.IntegerField(source="row_index")

    class Meta:
        model = BatchRow
        fields = ["index", "errors"]


class BatchPaymentSerializer(serializers.Serializer):
    """The batch's merged payment (an `orders.billing.Bill`); the whole object is at /api/v1/payments/{id}/."""

    id = serializers.IntegerField()
    reference = serializers.CharField()
    status = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    refunded_amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    pay_url = serializers.CharField()


class BatchSummarySerializer(serializers.ModelSerializer):
    """A batch in a listing: its counters come annotated on the queryset, one query for the page."""

    placed = serializers.IntegerField(read_only=True)
    failed = serializers.IntegerField(read_only=True)
    pending = serializers.IntegerField(read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:batch-detail")

    class Meta:
        model = Batch
        fields = [
            "id",
            "url",
            "status",
            "source",
            "row_count",
            "accepted_rows",
            "placed",
            "failed",
            "pending",
            "retry_of",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BatchDetailSerializer(BatchSummarySerializer):
    orders = serializers.SerializerMethodField()
    failures = serializers.SerializerMethodField()
    rejected_rows = serializers.SerializerMethodField()
    payment = serializers.SerializerMethodField()
    inconsistency = serializers.CharField(read_only=True)

    class Meta(BatchSummarySerializer.Meta):
        fields = [
            *BatchSummarySerializer.Meta.fields,
            "orders",
            "failures",
            "rejected_rows",
            "payment",
            "inconsistency",
        ]
        read_only_fields = fields

    @extend_schema_field(BatchOrderSerializer(many=True))
    def get_orders(self, batch) -> list[dict]:
        return list(BatchOrderSerializer(batch.orders.order_by("row_index"), many=True).data)

    @extend_schema_field(RowFailureSerializer(many=True))
    def get_failures(self, batch) -> list[dict]:
        rows = batch.rows.filter(outcome=BatchRow.Outcome.FAILED).order_by("row_index")
        return list(RowFailureSerializer(rows, many=True).data)

    @extend_schema_field(RejectedRowSerializer(many=True))
    def get_rejected_rows(self, batch) -> list[dict]:
        rows = batch.rows.filter(outcome=BatchRow.Outcome.REJECTED).order_by("row_index")
        return list(RejectedRowSerializer(rows, many=True).data)

    @extend_schema_field(BatchPaymentSerializer(allow_null=True))
    def get_payment(self, batch) -> dict | None:
        bill = billing.billing().bill_of(batch)
        return BatchPaymentSerializer(bill).data if bill is not None else None


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["sku", "name", "kind", "unit_price", "stock", "attributes"]
        read_only_fields = fields
