from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, throttle_classes
from rest_framework.response import Response

from config.errors import api_error
from config.inputs import text_problem
from config.openapi import error_response
from config.throttling import LookupThrottle, UserThrottle
from orders import messages as order_messages
from recharge.numbers import InvalidNumber, parse_mobile
from recharge.order_types import PHONE_MAX_LENGTH, carrier_discounts, face_value_price

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise


@extend_schema(
    parameters=[
        OpenApiParameter(
            "phone",
            {"type": "string", "maxLength": PHONE_MAX_LENGTH},
            required=True,
            description="A mainland China mobile number",
        )
    ],
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
        ),
        400: error_response(400, "`phone` is missing, too long or not a mainland China mobile number."),
    },
)
@api_view(["GET"])
@throttle_classes([UserThrottle, LookupThrottle])
def phone_lookup(request):
    """Carrier, region (号码归属地), normalised number and the face values on offer with their prices."""
    raw = request.query_params.get("phone", "")
    problem: str | StrPromise | None = None
    if not raw.strip():
        problem = order_messages.REQUIRED
    elif len(raw) > PHONE_MAX_LENGTH:
        problem = str(order_messages.TOO_LONG).format(max=PHONE_MAX_LENGTH)
    elif text_problem(raw):
        problem = text_problem(raw)
    else:
        try:
            number = parse_mobile(raw)
        except InvalidNumber as invalid:
            problem = str(invalid)
    if problem is not None:
        return api_error(400, problem, "invalid", phone=[str(problem)])
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
