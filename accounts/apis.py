"""Identity API: thin views; each validates shape, applies its rate limit and
calls one service (see accounts.services for the rules)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import devices, services
from accounts.serializers import (
    ErrorEnvelope,
    LoginInput,
    PasswordChangeInput,
    PinSetInput,
    RefreshInput,
    RegisterInput,
    TokenPairOutput,
    UserOutput,
)
from ledgerx.api.ratelimit import auth_rate_limit_ip, auth_rate_limit_key


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorEnvelope, description=description)


RETRY_AFTER = OpenApiParameter(
    name="Retry-After",
    type=OpenApiTypes.INT,
    location=OpenApiParameter.HEADER,
    response=[429, 503],
    description="Seconds to wait: until the rate-limit window resets (429), before retrying (503).",
)
VALIDATION = _error("validation_error: malformed JSON or a bad field.")
RATE_LIMITED = _error("rate_limited: too many requests (see Retry-After).")
LIMITER_DOWN = _error("service_unavailable: the rate limiter (Redis) is down; retry later.")
NOT_AUTHENTICATED = _error("not_authenticated / token_invalid: missing, expired or revoked access token.")
NO_CONTENT = OpenApiResponse(description="Done; no body.")


def _user_body(user) -> dict:
    return UserOutput(
        {
            "id": user.pk,
            "email": user.email,
            "full_name": user.full_name,
            "role": user.role,
            "status": user.status,
            "pin_set": user.pin_set,
        }
    ).data


def _pair_body(pair) -> dict:
    return TokenPairOutput({"access": pair.access, "refresh": pair.refresh}).data


class PublicApi(APIView):
    # Endpoints used before there is a token: a stale Authorization header is ignored.

    authentication_classes: list = []
    permission_classes = [AllowAny]


class RegisterApi(PublicApi):
    @extend_schema(
        operation_id="auth_register",
        description=(
            "Create a customer. Email is unique case-insensitively; the password passes Django's "
            "validators. Limited per IP and per email."
        ),
        tags=["identity"],
        auth=[],
        request=RegisterInput,
        parameters=[RETRY_AFTER],
        responses={
            201: UserOutput,
            400: VALIDATION,
            409: _error("email_taken: a user with this email exists."),
            429: RATE_LIMITED,
            503: LIMITER_DOWN,
        },
    )
    def post(self, request):
        auth_rate_limit_ip(request, scope="register")
        data = RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        auth_rate_limit_key(request, scope="register", value=data.validated_data["email"])
        user = services.user_register(**data.validated_data)
        return Response(_user_body(user), status=status.HTTP_201_CREATED)


class LoginApi(PublicApi):
    @extend_schema(
        operation_id="auth_login",
        description="Exchange email and password for an access and a refresh token. Limited per IP and per email.",
        tags=["identity"],
        auth=[],
        request=LoginInput,
        parameters=[RETRY_AFTER],
        responses={
            200: TokenPairOutput,
            400: VALIDATION,
            401: _error("invalid_credentials: unknown email or wrong password (indistinguishable)."),
            429: RATE_LIMITED,
            503: LIMITER_DOWN,
        },
    )
    def post(self, request):
        auth_rate_limit_ip(request, scope="login")
        data = LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"]
        device = devices.device_token_for_email(devices.device_token_presented(request), email=email)
        if device is None:
            auth_rate_limit_key(request, scope="login", value=email)
        else:  # a known device has its own bucket: others failing on this email cannot lock it out
            auth_rate_limit_key(request, scope="login.device", value=device)
        pair = services.auth_login(**data.validated_data)
        response = Response(_pair_body(pair))
        devices.device_token_attach(response, devices.device_token_issue(email=email))
        return response


class RefreshApi(PublicApi):
    @extend_schema(
        operation_id="auth_refresh",
        description=(
            "Rotate a refresh token: a new pair; the presented token is revoked at once. "
            "Limited per IP and per account (the user the token was issued to)."
        ),
        tags=["identity"],
        auth=[],
        request=RefreshInput,
        parameters=[RETRY_AFTER],
        responses={
            200: TokenPairOutput,
            400: VALIDATION,
            401: _error(
                "token_invalid: bad, expired or revoked refresh token. Presenting a revoked one "
                "revokes every refresh token of its user."
            ),
            429: RATE_LIMITED,
            503: LIMITER_DOWN,
        },
    )
    def post(self, request):
        auth_rate_limit_ip(request, scope="refresh")
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        owner = services.refresh_token_owner(refresh=data.validated_data["refresh"])
        if owner is not None:
            auth_rate_limit_key(request, scope="refresh", value=owner)
        pair = services.token_refresh(refresh=data.validated_data["refresh"])
        return Response(_pair_body(pair))


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_logout",
        description="Revoke one of your refresh tokens.",
        tags=["identity"],
        request=RefreshInput,
        parameters=[RETRY_AFTER],
        responses={
            204: NO_CONTENT,
            400: VALIDATION,
            401: _error("not_authenticated / token_invalid: bad access token, or a refresh token not yours."),
            429: RATE_LIMITED,
        },
    )
    def post(self, request):
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.token_revoke(actor=request.user, refresh=data.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_retrieve",
        description="The authenticated user.",
        tags=["identity"],
        parameters=[RETRY_AFTER],
        responses={200: UserOutput, 401: NOT_AUTHENTICATED, 429: RATE_LIMITED},
    )
    def get(self, request):
        return Response(_user_body(request.user))


class PasswordChangeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_password_update",
        description="Change the password; every refresh token of the user is revoked.",
        tags=["identity"],
        request=PasswordChangeInput,
        parameters=[RETRY_AFTER],
        responses={
            204: NO_CONTENT,
            400: VALIDATION,
            401: _error("invalid_credentials (wrong current password), or not_authenticated / token_invalid."),
            429: RATE_LIMITED,
            503: LIMITER_DOWN,
        },
    )
    def put(self, request):
        # A stolen access token must not allow fast password guessing.
        auth_rate_limit_key(request, scope="password", value=str(request.user.pk))
        data = PasswordChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_change(user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PinSetApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="me_pin_update",
        description="Set or replace the transaction PIN (4-6 ASCII digits as a string); the password proves identity.",
        tags=["identity"],
        request=PinSetInput,
        parameters=[RETRY_AFTER],
        responses={
            204: NO_CONTENT,
            400: _error("validation_error (not a string of 4-6 ASCII digits) or weak_pin."),
            401: _error("invalid_credentials (wrong password), or not_authenticated / token_invalid."),
            429: RATE_LIMITED,
            503: LIMITER_DOWN,
        },
    )
    def put(self, request):
        auth_rate_limit_key(request, scope="pin", value=str(request.user.pk))
        data = PinSetInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.pin_set(user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)
