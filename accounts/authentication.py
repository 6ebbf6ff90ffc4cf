"""JWT authentication that also records the user for logs."""

from rest_framework_simplejwt.authentication import JWTAuthentication

from ledgerx.context import user_id_var


class LedgerXJWTAuthentication(JWTAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            user_id_var.set(str(result[0].pk))
        return result

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) when credentials are missing.
        return 'Bearer realm="api"'
