"""OpenAPI description of our JWT authentication (Bearer, HS256 access token)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class LedgerXJWTScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.LedgerXJWTAuthentication"
    name = "bearerAuth"
