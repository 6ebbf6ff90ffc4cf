"""Rate limits over the Django cache, with django-ratelimit's fixed windows.

Two policies when the cache (Redis) is unreachable:
- identity endpoints (login, register, refresh, password/PIN changes) fail
  CLOSED with 503 service_unavailable: running them without their limit would
  open the door to credential stuffing;
- the general per-user API limit fails OPEN (with a warning in the log), so
  reads and money movement keep working from PostgreSQL.

``get_usage`` is the function behind ``is_ratelimited``; we call it directly
because it also tells how long until the window resets (for Retry-After).
"""

import logging

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

from ledgerx.api.middleware import client_ip
from ledgerx.exceptions import RateLimited, ServiceUnavailable
from ledgerx.observability import metrics

logger = logging.getLogger("ledgerx.ratelimit")

try:  # the errors a cache backend raises when its server is unreachable
    from django_redis.exceptions import ConnectionInterrupted
    from redis.exceptions import RedisError

    CACHE_ERRORS: tuple[type[BaseException], ...] = (ConnectionInterrupted, RedisError, OSError)
except ImportError:  # pragma: no cover - django-redis is a runtime requirement
    CACHE_ERRORS = (OSError,)


class _CacheUnavailable(Exception):
    pass


def _hit(request, *, group: str, value: str, rate: str) -> dict | None:
    """Count one hit; return django-ratelimit's usage dict (None: limits disabled)."""
    try:
        usage = get_usage(request, group=group, key=lambda _group, _request: value, rate=rate, increment=True)
    except CACHE_ERRORS as exc:
        raise _CacheUnavailable(str(exc)) from exc
    if usage is not None and usage["limit"] == 0 and usage["time_left"] == -1:
        # django-ratelimit's marker for "the cache answered nothing".
        raise _CacheUnavailable("the cache returned no counter")
    return usage


def _raise_if_over(usage: dict | None, group: str) -> None:
    if usage is not None and usage["should_limit"]:
        metrics.rate_limit_counted(group)
        raise RateLimited(retry_after=max(1, usage["time_left"]))


def rate_limit_strict(request, *, group: str, value: str, rate: str | None = None) -> None:
    """Count a hit on (group, value) at ``rate`` (default settings.AUTH_RATE).

    Raises RateLimited over the limit, ServiceUnavailable if the cache is down.
    """
    try:
        usage = _hit(request, group=group, value=value, rate=rate or settings.AUTH_RATE)
    except _CacheUnavailable as exc:
        logger.error("rate limiter unavailable, refusing %s: %s", group, exc)
        raise ServiceUnavailable("The rate limiter is unavailable; try again shortly.") from exc
    _raise_if_over(usage, group)


def auth_rate_limit_ip(request, *, scope: str) -> None:
    """settings.AUTH_RATE per client IP for ``scope`` (login, register, refresh).

    The IP comes from ``client_ip`` (REMOTE_ADDR unless trusted proxies are
    configured), so a forged X-Forwarded-For cannot buy a fresh bucket.
    Call it before validating the body, so malformed requests count too.
    """
    rate_limit_strict(request, group=f"auth.{scope}.ip", value=client_ip(request))


def auth_rate_limit_key(request, *, scope: str, value: str) -> None:
    """settings.AUTH_RATE per account-identifying value (an email, a user id)."""
    rate_limit_strict(request, group=f"auth.{scope}.key", value=value.strip().lower())


class APIRateThrottle(BaseThrottle):
    """settings.API_RATE per authenticated user on every DRF view; fails open."""

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if not getattr(user, "is_authenticated", False):
            return True  # anonymous endpoints carry their own (IP/email) limits
        try:
            usage = _hit(request, group="api.user", value=str(user.pk), rate=settings.API_RATE)
        except _CacheUnavailable as exc:
            logger.warning("rate limiter unavailable, serving without the per-user limit: %s", exc)
            return True
        _raise_if_over(usage, "api.user")
        return True
