"""Known-device tokens: a correct password from a client that logged in before passes the per-email limit.

The per-email login limit stops guessing one account's password from many IPs,
but anyone can then lock the owner out by failing five times on their email
(OWASP's "account lockout" denial of service). Following OWASP's device
cookies: a successful login hands the client a signed token naming the user
and a random device id (cookie ``ledgerx_device`` for browsers, the same value
in the ``Device-Token`` response header for other clients, who send it back as
``Device-Token``). A login that presents a valid token for the email it names
is counted in that device's own bucket instead of the email's; everyone else
is still counted per email (and per IP). A device that fails the limit is
limited by itself, so a stolen token buys one more bucket, not unlimited tries.
"""

import secrets

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError

from accounts.models import User

COOKIE = "ledgerx_device"
HEADER = "Device-Token"
SALT = "ledgerx.accounts.known-device"
MAX_AGE = 180 * 24 * 3600


def device_token_issue(*, email: str) -> str:
    """A new signed known-device token for the user with ``email`` (after their successful login)."""
    user_id = User.objects.filter(email__iexact=email.strip()).values_list("pk", flat=True).get()
    return signing.dumps({"u": str(user_id), "d": secrets.token_urlsafe(12)}, salt=SALT, compress=True)


def device_token_for_email(token: str | None, *, email: str) -> str | None:
    """The device id of a valid, unexpired token issued to the user with ``email``; else None."""
    if not token or len(token) > 512:
        return None
    try:
        claims = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("u"), str) or not isinstance(claims.get("d"), str):
        return None
    try:
        known = User.objects.filter(pk=claims["u"], email__iexact=(email or "").strip()).exists()
    except ValidationError:  # signed by us, so never expected: a non-UUID id
        return None
    return claims["d"] if known else None


def device_token_presented(request) -> str | None:
    return request.headers.get(HEADER) or request.COOKIES.get(COOKIE)


def device_token_attach(response, token: str) -> None:
    response[HEADER] = token
    response.set_cookie(
        COOKIE,
        token,
        max_age=MAX_AGE,
        path="/api/v1/auth/",
        secure=not settings.DEBUG and not settings.TESTING,
        httponly=True,
        samesite="Strict",
    )
