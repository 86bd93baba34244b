from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from orders.models import Order
from payments import messages, services
from payments.api.serializers import PaymentSerializer, RefundRequestSerializer, RefundSerializer
from payments.models import Payment


class PaymentViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PaymentSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Payment.objects.none()
        payments = Payment.objects.prefetch_related("allocations", "refunds")
        # Staff handle refunds for every customer; a customer sees only their own payments.
        return payments if self.request.user.is_staff else payments.filter(owner=self.request.user)

    @extend_schema(request=RefundRequestSerializer, responses={201: RefundSerializer})
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAdminUser])
    def refunds(self, request, pk=None):
        """Refund one order's share of this payment (staff only). Completes when the gateway confirms."""
        payment = self.get_object()
        refund_request = RefundRequestSerializer(data=request.data)
        refund_request.is_valid(raise_exception=True)
        order_id = refund_request.validated_data["order"]
        order = Order.objects.filter(pk=order_id, allocation__payment=payment).first()
        if order is None:
            return Response(
                {"order": [str(messages.ORDER_NOT_IN_PAYMENT).format(order=order_id)]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            refund = services.payment_refund_order(order=order, reason=refund_request.validated_data["reason"])
        except services.PaymentError as refused:
            return Response({"detail": str(refused)}, status=status.HTTP_409_CONFLICT)
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)
