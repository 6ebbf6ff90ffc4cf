"""JWT authentication that also records the user for logs."""

import uuid

from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from accounts.services import REQUEST_ROW
from ledgerx.context import user_id_var


def _is_uuid(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class LedgerXJWTAuthentication(JWTAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            user_id_var.set(str(result[0].pk))
        return result

    def get_user(self, validated_token):
        """The user the token names; a ``sub`` that is not a user id is an invalid token.

        A correctly signed token can only carry a foreign ``sub`` if the signing
        key was used elsewhere (or leaked); the lookup would otherwise raise a
        validation error deep in the UUID field, which is not the client's 500.

        Raises InvalidToken (401 ``token_invalid``).
        """
        if not _is_uuid(validated_token.get(api_settings.USER_ID_CLAIM)):
            raise InvalidToken(_("Token contained no recognizable user identification"))
        user = super().get_user(validated_token)
        setattr(user, REQUEST_ROW, True)
        return user

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) when credentials are missing.
        return 'Bearer realm="api"'
