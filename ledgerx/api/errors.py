"""One renderer for every API error: the contract's envelope.

``{"error": {"code", "message", "fields"?, ...extra}}`` from DRF views (via
``exception_handler``), from Django itself (400/403/404/500 handlers, oversized
or malformed bodies) and from the request middleware's last-resort catch.
Outside the API (``is_api_path``: the admin) the handlers serve Django's HTML
error pages: a back-office user gets a page, not a JSON document.
"""

import logging
import sys
import threading
import time

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from ledgerx.exceptions import LedgerXError, RateLimited, ServiceUnavailable
from ledgerx.observability import metrics

logger = logging.getLogger("ledgerx.errors")

try:  # the driver's own classes, for a cursor used outside Django's error wrapper
    import psycopg
except ImportError:  # pragma: no cover - SQLite-only installs
    psycopg = None

# Connection-level database failures: the database is down, restarting, unreachable,
# or the connection broke mid-request. DB-API puts "errors related to the
# database's operation" here (also a serialization failure, a deadlock, SQLite's
# "database is locked"): every one is worth a retry, none is the client's fault.
_OUTAGE_ERRORS: tuple = (OperationalError, InterfaceError)
_DATA_ERRORS: tuple = (DataError,)
if psycopg is not None:
    _OUTAGE_ERRORS += (psycopg.OperationalError, psycopg.InterfaceError)
    _DATA_ERRORS += (psycopg.DataError,)
# Seconds a client is told to wait after a 503 (an outage of the database, the
# rate limiter, a readiness probe's dependency): every 503 carries it.
OUTAGE_RETRY_AFTER = 2
NUMERIC_OUT_OF_RANGE = "22003"


class _BurstLog:
    """Logs the first failure of a burst at ERROR, then at most one summary per ``window``.

    During an outage every request fails the same way; one line with the cause
    (and a count of the ones folded into it) says everything a thousand would.
    """

    def __init__(self, window: float = 30.0):
        self.window = window
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._suppressed = 0

    def log(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.window:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        logger.error(
            "database unavailable: answering 503 (%d more since the last report)", suppressed, exc_info=exc
        )


database_outage_log = _BurstLog()


def is_database_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, _OUTAGE_ERRORS)


def _number_out_of_range(exc: Exception) -> bool:
    """A number past what the database stores: PostgreSQL's 22003, or SQLite's driver refusing to bind it."""
    if isinstance(exc, _DATA_ERRORS):
        return _sqlstate(exc) == NUMERIC_OUT_OF_RANGE
    return isinstance(exc, OverflowError) and "SQLite INTEGER" in str(exc)


def _sqlstate(exc: Exception) -> str | None:
    cause = exc if psycopg is not None and isinstance(exc, psycopg.Error) else exc.__cause__
    return getattr(cause, "sqlstate", None)


def error_body(code: str, message: str, fields: dict | None = None, **extra) -> dict:
    error = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    error.update(extra)
    return {"error": error}


def error_response(status: int, code: str, message: str, fields: dict | None = None, headers=None, **extra):
    metrics.api_error_counted(code=code, status=status)
    response = JsonResponse(error_body(code, message, fields, **extra), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _flatten_fields(detail) -> dict[str, list[str]]:
    """DRF detail (dict/list/str, possibly nested) -> {field: [messages]}."""
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub_key, messages in _flatten_fields(value).items():
                    name = key if sub_key == "non_field_errors" else f"{key}.{sub_key}"
                    fields.setdefault(name, []).extend(messages)
            elif isinstance(value, list) and value and isinstance(value[0], (dict, list)):
                for index, item in enumerate(value):
                    for sub_key, messages in _flatten_fields(item).items():
                        fields.setdefault(f"{key}.{index}.{sub_key}", []).extend(messages)
            elif isinstance(value, list):
                fields[key] = [str(message) for message in value]
            else:
                fields[key] = [str(value)]
        return fields
    if isinstance(detail, list):
        return {"non_field_errors": [str(message) for message in detail]}
    return {"non_field_errors": [str(detail)]}


def _from_exception(exc: Exception):
    """Map any exception to (status, code, message, fields, headers, extra)."""
    if isinstance(exc, RateLimited):
        return exc.status, exc.code, exc.message, None, {"Retry-After": str(exc.retry_after)}, {}
    if isinstance(exc, ServiceUnavailable):
        return exc.status, exc.code, exc.message, exc.fields, {"Retry-After": str(OUTAGE_RETRY_AFTER)}, exc.extra
    if isinstance(exc, LedgerXError):
        return exc.status, exc.code, exc.message, exc.fields, {}, exc.extra
    if isinstance(exc, drf.ValidationError):
        return 400, "validation_error", "The request is invalid.", _flatten_fields(exc.detail), {}, {}
    if isinstance(exc, drf.ParseError):
        return 400, "validation_error", "Malformed JSON body.", {"non_field_errors": [str(exc.detail)]}, {}, {}
    if isinstance(exc, drf.UnsupportedMediaType):
        message = "Send the body as JSON with Content-Type: application/json."
        return 400, "validation_error", message, {"non_field_errors": [message]}, {}, {}
    if isinstance(exc, (InvalidToken, TokenError)):
        return 401, "token_invalid", "The token is invalid, expired or revoked.", None, {}, {}
    if isinstance(exc, drf.AuthenticationFailed):
        # Credentials were presented but rejected (bad signature, expired, revoked).
        return 401, "token_invalid", "The token is invalid, expired or revoked.", None, {}, {}
    if isinstance(exc, drf.NotAuthenticated):
        return 401, "not_authenticated", "Authentication credentials were not provided.", None, {}, {}
    if isinstance(exc, (drf.PermissionDenied, PermissionDenied)):
        return 403, "forbidden", "You do not have permission to perform this action.", None, {}, {}
    if isinstance(exc, (drf.NotFound, Http404)):
        return 404, "not_found", "Not found.", None, {}, {}
    if isinstance(exc, drf.MethodNotAllowed):
        return 405, "method_not_allowed", str(exc.detail), None, {}, {}
    if isinstance(exc, drf.NotAcceptable):
        return 406, "not_acceptable", str(exc.detail), None, {}, {}
    if isinstance(exc, drf.Throttled):
        return 429, "rate_limited", "Too many requests.", None, {"Retry-After": str(int(exc.wait or 1))}, {}
    if isinstance(exc, RequestDataTooBig):
        return 413, "payload_too_large", "The request body is too large.", None, {}, {}
    if isinstance(exc, SuspiciousOperation):
        return 400, "validation_error", "The request is malformed.", {"non_field_errors": ["The request is malformed."]}, {}, {}
    if isinstance(exc, drf.APIException):
        return exc.status_code, "error", str(exc.detail), None, {}, {}
    if isinstance(exc, _OUTAGE_ERRORS):
        database_outage_log.log(exc)
        message = "The database is unavailable; try again shortly."
        return 503, "service_unavailable", message, None, {"Retry-After": str(OUTAGE_RETRY_AFTER)}, {}
    if _number_out_of_range(exc):
        # A sum past the bigint columns (a balance, a total): the movement engine
        # refuses balances over its ceiling first; this is the backstop.
        return 409, "balance_limit", "The result would exceed the largest amount the ledger holds.", None, {}, {}
    if isinstance(exc, (*_DATA_ERRORS, OverflowError)):
        # A value the database (or the driver) cannot store: the client's data, not our failure.
        message = "A value is out of range or cannot be stored."
        return 400, "validation_error", message, {"non_field_errors": [message]}, {}, {}
    return None


def render_exception(exc: Exception) -> JsonResponse:
    """Render any exception; unknown ones are logged and answered with a bare 500."""
    mapped = _from_exception(exc)
    if mapped is None:
        logger.exception("unhandled exception", exc_info=exc)
        return error_response(500, "internal_error", "An unexpected error occurred.")
    status, code, message, fields, headers, extra = mapped
    if status >= 500 and code != "service_unavailable":  # an outage is logged per burst, above
        logger.error("server error %s: %s", code, message)
    return error_response(status, code, message, fields, headers=headers, **extra)


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every exception raised in a view becomes an envelope."""
    return render_exception(exc)


def is_api_path(path: str) -> bool:
    """Paths whose errors are the JSON envelope: the API and the health probes."""
    return path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics")


def handler404(request, exception=None):
    if not is_api_path(request.path):
        return defaults.page_not_found(request, exception)
    return error_response(404, "not_found", "Not found.")


def handler500(request):
    """Django's last resort (an exception outside a view: a middleware, the URL resolver).

    It is called inside the ``except`` clause that caught the exception, so a
    database outage met there still answers 503 with ``Retry-After``.
    """
    exc = sys.exc_info()[1]
    if not is_api_path(request.path):
        if isinstance(exc, _OUTAGE_ERRORS):
            database_outage_log.log(exc)
            response = defaults.server_error(request)
            response.status_code = 503
            response["Retry-After"] = str(OUTAGE_RETRY_AFTER)
            return response
        return defaults.server_error(request)
    if exc is not None and _from_exception(exc) is not None:
        return render_exception(exc)
    return error_response(500, "internal_error", "An unexpected error occurred.")


def handler400(request, exception=None):
    if not is_api_path(request.path):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return error_response(413, "payload_too_large", "The request body is too large.")
    return error_response(400, "validation_error", "The request is malformed.", {"non_field_errors": ["The request is malformed."]})


def handler403(request, exception=None):
    if not is_api_path(request.path):
        return defaults.permission_denied(request, exception)
    return error_response(403, "forbidden", "You do not have permission to perform this action.")


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: the envelope on API paths, Django's page elsewhere (admin)."""
    if is_api_path(request.path):
        return error_response(403, "forbidden", "CSRF verification failed.")
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Catch-all for unknown /api/ paths (any method): the 404 envelope."""
    return error_response(404, "not_found", "Not found.")
