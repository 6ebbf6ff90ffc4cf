"""``GET /metrics``: the Prometheus exposition, for the monitoring system only.

Off unless ``LEDGERX_METRICS_TOKEN`` is set (then 404, as for any unknown
path); with it, the scraper sends ``Authorization: Bearer <token>``. The
numbers are not secret money data, but they show traffic and failure rates,
which are nobody else's business.
"""

import hmac
import os

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from ledgerx.api.errors import error_response
from ledgerx.observability.collectors import DatabaseGauges


def exposition() -> bytes:
    """Every worker's counters (multiprocess mode under gunicorn, else this process's) and the database gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counters = CollectorRegistry()
        multiprocess.MultiProcessCollector(counters)
    else:
        counters = REGISTRY
    gauges = CollectorRegistry()
    gauges.register(DatabaseGauges())
    return generate_latest(counters) + generate_latest(gauges)


def metrics_view(request):
    token = settings.METRICS_TOKEN
    if not token:
        return error_response(404, "not_found", "Not found.")
    presented = request.META.get("HTTP_AUTHORIZATION", "")
    if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
        return error_response(
            401, "not_authenticated", "Send the metrics token as a Bearer token.", headers={"WWW-Authenticate": "Bearer"}
        )
    if request.method not in ("GET", "HEAD"):
        return error_response(405, "method_not_allowed", f'Method "{request.method}" not allowed.', headers={"Allow": "GET, HEAD"})
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
