"""Liveness and readiness probes and the API index (no auth, no rate limit)."""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.urls import reverse

from ledgerx.api.errors import error_response

logger = logging.getLogger("ledgerx.health")


def healthz(request):
    return JsonResponse({"status": "ok"})


def api_index(request):
    """``GET /api/v1/``: where a newcomer (or a client) finds the docs, the schema and the probes."""
    if request.method not in ("GET", "HEAD"):
        return error_response(405, "method_not_allowed", f'Method "{request.method}" not allowed.', headers={"Allow": "GET, HEAD"})
    links = {
        "docs": reverse("docs"),
        "schema": reverse("schema"),
        "health": reverse("healthz"),
        "ready": reverse("readyz"),
    }
    return JsonResponse(
        {
            "name": settings.SPECTACULAR_SETTINGS["TITLE"],
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
            "links": {name: request.build_absolute_uri(url) for name, url in links.items()},
        }
    )


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any driver error means "not ready"
        logger.warning("readiness: database unreachable", exc_info=True)
        # Never keep a broken connection for the next probe: it reconnects, so
        # the answer follows the database back up as soon as it is.
        try:
            if not connection.in_atomic_block:
                connection.close()
        except Exception:  # noqa: BLE001 - closing a dead connection may fail too
            pass
        return False


def _cache_ok() -> bool:
    if not settings.REDIS_URL:
        return True
    try:
        from django_redis import get_redis_connection

        return bool(get_redis_connection("default").ping())
    except Exception:  # any client error means "not ready"
        logger.warning("readiness: redis unreachable", exc_info=True)
        return False


def _replicas() -> dict[str, str]:
    """Each read replica: ok, lagging (over LEDGERX_REPLICA_MAX_LAG) or down. Either of the
    last two only degrades the service: its reads are answered by the primary."""
    if not settings.REPLICA_ALIASES:
        return {}
    from ledgerx.db.replicas import replica_states

    return {alias: state.label for alias, state in replica_states().items()}


def readiness() -> tuple[int, dict]:
    """(status, body) of the readiness probe: 200 when the database (and Redis, when configured) answer, else 503.

    A lagging or lost replica only degrades it (200 ``degraded``). Shared by
    ``GET /readyz`` and the probe listener (``ledgerx.server.probes``).
    """
    checks = {"database": _database_ok(), "cache": _cache_ok()}
    ready = all(checks.values())
    replicas = _replicas()
    status = "unavailable" if not ready else ("degraded" if any(v != "ok" for v in replicas.values()) else "ok")
    body = {"status": status, "checks": {**{k: "ok" if v else "down" for k, v in checks.items()}, **replicas}}
    if not ready:
        body["error"] = {"code": "service_unavailable", "message": "A dependency is down."}
    return (200 if ready else 503), body


def readyz(request):
    status, body = readiness()
    return JsonResponse(body, status=status)
