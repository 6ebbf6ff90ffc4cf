"""Request context, access log and the last-resort error envelope."""

import ipaddress
import logging
import re
import time
import uuid

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404

from ledgerx.api.errors import OUTAGE_RETRY_AFTER, is_api_path, is_database_outage, render_exception, typed_error_response
from ledgerx.context import client_ip_var, request_id_var, user_id_var
from ledgerx.exceptions import PayloadTooLarge

access_logger = logging.getLogger("ledgerx.access")
# Exceptions Django turns into their own 4xx page.
_REFUSALS = (PermissionDenied, Http404, BadRequest, SuspiciousOperation)
# An X-Request-ID the client sends is kept when it matches (the OpenAPI schema declares it too).
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"
_VALID_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def client_ip(request) -> str:
    """The client's IP: REMOTE_ADDR, or the address the trusted proxies saw.

    With N trusted proxies, the N-th address from the right of X-Forwarded-For is
    the client (each proxy appends what it saw). Entries further left are
    client-controlled and never used, so a spoofed header cannot move a client
    to a fresh rate-limit bucket.
    """
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) >= trusted:
        return _address(forwarded[-trusted]) or remote
    return remote


def _address(entry: str) -> str | None:
    """An X-Forwarded-For entry as a bare IP address, or None.

    Some proxies append ``ip:port`` or ``[v6]:port``; a miscounted proxy chain
    hands over whatever the client wrote. The address goes to the audit
    record's inet column (PostgreSQL refuses anything else: a 500 on every
    audited request) and keys the rate limits, so a non-address falls back to
    REMOTE_ADDR.
    """
    if entry.startswith("[") and "]" in entry:
        entry = entry[1 : entry.index("]")]
    elif entry.count(":") == 1:
        entry = entry.partition(":")[0]
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return None
    return None if getattr(address, "scope_id", None) else str(address)


def _session_user_id(request) -> str | None:
    """The session's user for the access log; None when there is none or it cannot be loaded.

    ``request.user`` is lazy: the first look loads the session and the user,
    so during a database outage it raises after the response (a 503) is made.
    """
    user = getattr(request, "user", None)
    try:
        return str(user.pk) if getattr(user, "is_authenticated", False) else None
    except Exception as exc:  # noqa: BLE001 - only outages are swallowed; anything else is re-raised
        if is_database_outage(exc):
            return None
        raise


class RequestContextMiddleware:
    """Sets X-Request-ID and the client IP for logs and audit; logs every request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else str(uuid.uuid4())
        request.request_id = request_id
        request.client_ip = client_ip(request)
        tokens = (
            request_id_var.set(request_id),
            client_ip_var.set(request.client_ip),
            user_id_var.set(None),
        )
        try:
            return self._respond(request, request_id)
        finally:  # whatever happened, the next request of this thread starts without this one's context
            for var, token in zip((request_id_var, client_ip_var, user_id_var), tokens):
                var.reset(token)

    def _respond(self, request, request_id):
        started = time.perf_counter()
        try:
            response = self._body_too_large(request) or self.get_response(request)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
        response["X-Request-ID"] = request_id
        if is_api_path(request.path) and not response.has_header("Cache-Control"):
            # Balances, statements and tokens must never sit in a browser's or a proxy's cache.
            response["Cache-Control"] = "no-store"
        if response.status_code == 503 and not response.has_header("Retry-After"):
            # Every 503 tells the client when to come back, whichever path answered
            # it (the API, a probe, an admin page met by an outage).
            response["Retry-After"] = str(OUTAGE_RETRY_AFTER)
        access_logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": user_id_var.get() or _session_user_id(request),
            },
        )
        return response

    @staticmethod
    def _body_too_large(request):
        """Enforce the body limits on API bodies (``MAX_BODY_BYTES``; ``MAX_BATCH_BODY_BYTES`` for batches).

        DRF's JSON parser reads the raw stream and never applies Django's limit;
        reading ``request.body`` here applies it (DRF then parses the buffered body).
        """
        if request.method in ("POST", "PUT", "PATCH") and request.path.startswith("/api/"):
            limit = settings.MAX_BATCH_BODY_BYTES if request.path == "/api/v1/batches" else settings.MAX_BODY_BYTES
            try:
                too_large = len(request.body) > limit
            except RequestDataTooBig:
                too_large = True
            if too_large:
                return typed_error_response(PayloadTooLarge)
        return None

    def process_exception(self, request, exception):
        """Exceptions that escape views outside DRF still get the envelope on API paths."""
        if is_api_path(request.path):
            return render_exception(exception)
        if isinstance(exception, _REFUSALS):
            # Django answers these itself (403, 404, 400): a refusal, not a fault.
            logging.getLogger("ledgerx.errors").info("refused: %s", type(exception).__name__)
            return None
        if not settings.DEBUG and not is_database_outage(exception):  # handler500 logs outages per burst
            logging.getLogger("ledgerx.errors").exception("unhandled exception", exc_info=exception)
        return None
