"""gunicorn's threaded worker, answering gunicorn's own refusals in the contract's envelope.

gunicorn refuses some requests before the application sees them (a request
line over ``limit_request_line``, too many or too large headers, a line that
is not HTTP) and writes a small HTML page for them. A client of a JSON API
should get the same ``{"error": {...}}`` body as from every other refusal,
so this worker overrides the one method that writes those answers
(``Worker.handle_error``), keeping gunicorn's log line and access log entry.
"""

import json
from datetime import datetime
from ssl import SSLError

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker

MALFORMED = "The request is malformed."
# gunicorn's refusals, by what the client did wrong: (classes, status, reason phrase, code).
_REFUSALS = (
    (http_errors.LimitRequestLine, 414, "URI Too Long", "uri_too_long"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "headers_too_large"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented", "not_implemented"),
    ((http_errors.ForbiddenProxyRequest, SSLError), 403, "Forbidden", "forbidden"),
    (
        (
            http_errors.InvalidRequestLine,
            http_errors.InvalidRequestMethod,
            http_errors.InvalidHTTPVersion,
            http_errors.InvalidHeader,
            http_errors.InvalidHeaderName,
            http_errors.InvalidProxyLine,
            http_errors.InvalidSchemeHeaders,
            http_errors.ObsoleteFolding,
        ),
        400,
        "Bad Request",
        "validation_error",
    ),
)


def refusal_for(exc: BaseException, cfg) -> tuple[int, str, str, str] | None:
    """(status, reason, code, message) for one of gunicorn's refusals; None for anything else (a fault)."""
    for classes, status, reason, code in _REFUSALS:
        if isinstance(exc, classes):
            break
    else:
        return None
    if code == "uri_too_long":
        message = f"The request line is longer than {cfg.limit_request_line} bytes."
    elif code == "headers_too_large":
        message = (
            f"The request has more than {cfg.limit_request_fields} headers "
            f"or a header longer than {cfg.limit_request_field_size} bytes."
        )
    elif code == "not_implemented":
        message = "The request's transfer coding is not supported."
    elif code == "forbidden":
        message = "The request is forbidden."
    else:
        message = MALFORMED
    return status, reason, code, message


def envelope(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying the error envelope; the connection closes after it."""
    error = {"code": code, "message": message}
    if code == "validation_error":  # the contract: validation errors name their fields
        error["fields"] = {"non_field_errors": [message]}
    body = json.dumps({"error": error}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "Cache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonErrorThreadWorker(ThreadWorker):
    """gthread (threads answer probes and light requests while others are inside bcrypt), JSON refusals."""

    def handle_error(self, req, client, addr, exc):
        request_start = datetime.now()
        addr = addr or ("", -1)  # a unix socket has no peer address
        refusal = refusal_for(exc, self.cfg)
        if refusal is None:
            if hasattr(req, "uri"):
                self.log.exception("Error handling request %s", req.uri)
            else:
                self.log.exception("Error handling request (no URI read)")
            status, reason, code, message = 500, "Internal Server Error", "internal_error", "An unexpected error occurred."
        else:
            status, reason, code, message = refusal
            self.log.warning("Invalid request from ip=%s: %s", addr[0], exc)
            if req is None and isinstance(exc, (http_errors.InvalidHeader, http_errors.InvalidHeaderName)):
                req = getattr(exc, "req", None)  # for the access log
        response = envelope(status, reason, code, message)
        if req is not None:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
            access = Response(req, client, self.cfg)
            access.status = f"{status} {reason}"
            access.response_length = len(response)
            self.log.access(access, req, environ, datetime.now() - request_start)
        try:
            util.write_nonblock(client, response)
        except Exception:  # noqa: BLE001 - the client may be gone; nothing left to tell it
            self.log.debug("Failed to send error message.")
