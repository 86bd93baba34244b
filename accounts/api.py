"""`POST /api/v1/auth/token/`: an integrator trades a username and password for the account's API token."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts import messages, services


def _readable(value: str) -> str:
    # A lone surrogate cannot be encoded, so the database would refuse it with an error instead of an answer.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError(str(messages.NOT_TEXT_WE_CAN_READ)) from None
    return value


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, validators=[_readable])
    password = serializers.CharField(max_length=4096, trim_whitespace=False, write_only=True, validators=[_readable])


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


_MESSAGES = serializers.ListField(child=serializers.CharField(), required=False)
TOKEN_ERROR = inline_serializer(
    "TokenError", {"username": _MESSAGES, "password": _MESSAGES, "non_field_errors": _MESSAGES}
)
DETAIL = inline_serializer("TokenRefused", {"detail": serializers.CharField()})


class ObtainTokenView(APIView):
    """Exchange a username and password for the account's API token (created if it has none yet)."""

    authentication_classes = []  # credentials are in the body; a session must not turn this into a CSRF check
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    @extend_schema(
        operation_id="auth_token_create",
        auth=[],
        request=TokenRequestSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(
                TOKEN_ERROR, description="A field is missing or unreadable, or the credentials are wrong."
            ),
            429: OpenApiResponse(DETAIL, description="Too many attempts from this address, or this account is locked."),
        },
    )
    def post(self, request):
        credentials = TokenRequestSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        # The plain HttpRequest, so that the lockout of repeated failures (django-axes) counts these
        # attempts with the website's and its middleware answers a locked account.
        user = authenticate(
            request._request,
            username=credentials.validated_data["username"],
            password=credentials.validated_data["password"],
        )
        if user is None:
            return Response({"non_field_errors": [str(messages.WRONG_CREDENTIALS)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"token": services.api_token_get_or_create(user=user).key})
