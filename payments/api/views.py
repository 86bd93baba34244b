from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.errors import api_error
from config.openapi import error_response
from orders.models import Order
from payments import messages, services
from payments.api.serializers import PaymentSerializer, RefundRequestSerializer, RefundSerializer
from payments.models import Payment, PaymentAttempt, Refund


class PaymentViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PaymentSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Payment.objects.none()
        attempts = Prefetch("attempts", queryset=PaymentAttempt.objects.order_by("created_at", "pk"))
        refunds = Prefetch("refunds", queryset=Refund.objects.select_related("request"))
        payments = Payment.objects.prefetch_related("allocations", attempts, refunds)
        # Staff handle refunds for every customer; a customer sees only their own payments.
        return payments if self.request.user.is_staff else payments.filter(owner_id=self.request.user.pk)

    @extend_schema(
        request=RefundRequestSerializer,
        responses={
            201: RefundSerializer,
            400: error_response(400, "The order is not covered by this payment, or the body is invalid."),
            409: error_response(409, "The payment cannot be refunded, or this order was refunded already."),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAdminUser])
    def refunds(self, request, pk=None):
        """Refund one order's share of this payment (staff only). Completes when the gateway confirms."""
        payment = self.get_object()
        refund_request = RefundRequestSerializer(data=request.data)
        refund_request.is_valid(raise_exception=True)
        order_id = refund_request.validated_data["order"]
        order = Order.objects.filter(pk=order_id, allocation__payment=payment).first()
        if order is None:
            message = str(messages.ORDER_NOT_IN_PAYMENT).format(order=order_id)
            return api_error(400, message, "invalid", order=[message])
        try:
            refund = services.payment_refund_order(order=order, reason=refund_request.validated_data["reason"])
        except services.PaymentError as refused:
            return api_error(409, refused, "conflict")
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)
