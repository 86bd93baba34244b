"""`POST /api/v1/auth/token/`: an integrator trades a username and password for the account's API token."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import messages, services
from config.json_input import BoundedJSONParser
from config.throttling import TokenThrottle


def _readable(value: str) -> None:
    # A lone surrogate cannot be encoded, so the database would refuse it with an error instead of an answer.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError(str(messages.NOT_TEXT_WE_CAN_READ)) from None


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, validators=[_readable])
    password = serializers.CharField(max_length=4096, trim_whitespace=False, write_only=True, validators=[_readable])


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


class ObtainTokenView(APIView):
    """Exchange a username and password for the account's API token (created if it has none yet)."""

    authentication_classes = []  # credentials are in the body; a session must not turn this into a CSRF check
    permission_classes = [AllowAny]
    # The API's own parser and shared throttle (per client address), like every other endpoint.
    parser_classes = [BoundedJSONParser]
    throttle_classes = [TokenThrottle]

    @extend_schema(
        operation_id="auth_token_create",
        auth=[],
        request=TokenRequestSerializer,
        # 400 (a missing or unreadable field, wrong credentials), 429 (too many attempts, a locked account)
        # and the other errors are documented for every operation by config/openapi.py.
        responses={200: TokenSerializer},
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
            return Response(
                {
                    "detail": str(messages.WRONG_CREDENTIALS),
                    "code": "invalid",
                    "non_field_errors": [str(messages.WRONG_CREDENTIALS)],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response({"token": services.api_token_get_or_create(user=user).key})
