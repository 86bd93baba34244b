from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, throttle_classes
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from orders import messages as order_messages
from recharge.numbers import InvalidNumber, parse_mobile
from recharge.order_types import carrier_discounts, face_value_price


class LookupThrottle(UserRateThrottle):
    # The checkout calls this as the user types: generous, but not a free number-lookup service.
    rate = "120/minute"


@extend_schema(
    parameters=[OpenApiParameter("phone", str, required=True, description="A mainland China mobile number")],
    responses={
        200: inline_serializer(
            "PhoneLookup",
            {
                "phone": serializers.CharField(),
                "carrier": serializers.CharField(),
                "carrier_zh": serializers.CharField(),
                "region": serializers.CharField(),
                "region_en": serializers.CharField(),
                "face_values": serializers.ListField(child=serializers.DictField()),
            },
        )
    },
)
@api_view(["GET"])
@throttle_classes([LookupThrottle])
def phone_lookup(request):
    """Carrier, region (号码归属地), normalised number and the face values on offer with their prices."""
    raw = request.query_params.get("phone", "")
    if not raw.strip():
        return Response({"phone": [str(order_messages.REQUIRED)]}, status=400)
    if len(raw) > 32:
        return Response({"phone": [str(order_messages.TOO_LONG).format(max=32)]}, status=400)
    try:
        number = parse_mobile(raw)
    except InvalidNumber as invalid:
        return Response({"phone": [str(invalid)]}, status=400)
    discounts = carrier_discounts()
    return Response(
        {
            **number.as_details(),
            "face_values": [
                {"face_value": str(value), "price": str(face_value_price(value, number.carrier, discounts))}
                for value in settings.RECHARGE_FACE_VALUES
            ],
        }
    )
