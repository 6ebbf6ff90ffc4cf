"""Request metrics: latency and counts per route template, in-flight requests, queries per request."""

import time

from django.db import connection

from ledgerx.observability import metrics


class _QueryCounter:
    """A ``connection.execute_wrapper`` that only counts."""

    __slots__ = ("count",)

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def route_of(request) -> str:
    """The URL pattern that answered (``api/v1/accounts/<uuid:account_id>``), never the raw path.

    Raw paths carry ids: as a label they would make one time series per
    account. Requests no pattern matched share one label.
    """
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return "unmatched"
    return match.route


class RequestMetricsMiddleware:
    """Outermost middleware, so the time and the queries of every other layer count."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        counter = _QueryCounter()
        metrics.IN_FLIGHT.inc()
        started = time.perf_counter()
        try:
            with connection.execute_wrapper(counter):
                response = self.get_response(request)
        finally:
            metrics.IN_FLIGHT.dec()
        elapsed = time.perf_counter() - started
        route = route_of(request)
        method = request.method if request.method in _METHODS else "other"
        metrics.REQUESTS.labels(route, method, f"{response.status_code // 100}xx").inc()
        metrics.REQUEST_SECONDS.labels(route, method).observe(elapsed)
        metrics.DB_QUERIES.labels(route).observe(counter.count)
        if response.get("Idempotent-Replayed") == "true":
            metrics.replay_counted()
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
