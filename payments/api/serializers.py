from rest_framework import serializers

from config.inputs import reject_bad_text
from payments import services
from payments.models import Payment, PaymentAllocation, PaymentAttempt, Refund


class AllocationSerializer(serializers.ModelSerializer):
    order = serializers.IntegerField(source="order_id")

    class Meta:
        model = PaymentAllocation
        fields = ["order", "amount"]


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentAttempt
        fields = ["reference", "provider", "method", "status", "amount", "created_at"]
        read_only_fields = fields


class RefundSerializer(serializers.ModelSerializer):
    # None for the refund of a payment paid after it could no longer be honoured (kind "unhonoured").
    order = serializers.IntegerField(source="order_id", allow_null=True)
    refund_number = serializers.CharField(
        source="request.reference",
        allow_null=True,
        default=None,
        help_text="Our refund number at the rail: the request that carries this refund (with others that fell "
        "due with it); empty while it waits to be grouped.",
    )

    class Meta:
        model = Refund
        fields = ["id", "reference", "kind", "order", "amount", "status", "reason", "refund_number", "created_at"]


class PaymentSerializer(serializers.ModelSerializer):
    batch = serializers.UUIDField(source="batch_id")
    orders = AllocationSerializer(source="allocations", many=True)
    attempts = AttemptSerializer(many=True, help_text="Every try at paying it, oldest first.")
    refunds = RefundSerializer(many=True)
    pay_url = serializers.SerializerMethodField()

    class Meta:
        model = Payment
        fields = [
            "id",
            "reference",
            "batch",
            "status",
            "amount",
            "refunded_amount",
            "currency",
            "orders",
            "attempts",
            "refunds",
            "pay_url",
            "expires_at",
            "paid_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_pay_url(self, payment) -> str:
        return services.payment_pay_url(payment)


class RefundRequestSerializer(serializers.Serializer):
    order = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default="", validators=[reject_bad_text]
    )
