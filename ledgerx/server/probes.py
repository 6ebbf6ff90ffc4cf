"""The probe listener: /healthz and /readyz on a port of their own, served by one thread per worker.

A request on the main port waits for a free worker thread; when every thread
is inside bcrypt (a burst of logins), a probe queued behind them and the
orchestrator restarted a healthy server. Each worker therefore also listens
on ``LEDGERX_PROBE_BIND`` with a thread that answers nothing but the two
probes, so they never wait for the application's threads (bcrypt releases
the GIL while it hashes). Every worker binds the same address with
SO_REUSEPORT: the kernel spreads probes over the live workers, and a worker
that died stops answering with it. One thread per worker keeps one database
connection for the readiness check.
"""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

logger = logging.getLogger("ledgerx.probes")


class _ProbeHandler(BaseHTTPRequestHandler):
    # One thread answers every probe: one request per connection (HTTP/1.0
    # closes after the answer) and a client that stalls is dropped after a few
    # seconds, so no client can hold the listener.
    protocol_version = "HTTP/1.0"
    timeout = 5

    def do_GET(self):  # noqa: N802 - the name http.server dispatches to
        from ledgerx.api.errors import OUTAGE_RETRY_AFTER, error_body
        from ledgerx.api.health import readiness

        path = self.path.partition("?")[0]
        if path == "/healthz":
            status, body = 200, {"status": "ok"}
        elif path == "/readyz":
            status, body = readiness()
        else:
            status, body = 404, error_body("not_found", "Not found.")
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(payload)))
        if status == 503:
            self.send_header("Retry-After", str(OUTAGE_RETRY_AFTER))
        self.end_headers()
        self.wfile.write(payload)

    do_HEAD = do_GET

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        logger.debug("probe %s", format % args)


class _SharedPortServer(HTTPServer):
    allow_reuse_address = True
    allow_reuse_port = True  # every worker binds the same address


def parse_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def start_probe_listener(bind: str) -> HTTPServer:
    """Serve the probes on ``bind`` (``host:port``) from a daemon thread of this process."""
    server = _SharedPortServer(parse_bind(bind), _ProbeHandler)

    def serve():
        from django.db import connections

        try:
            server.serve_forever()
        finally:  # the readiness check's connection belongs to this thread
            connections.close_all()

    thread = threading.Thread(target=serve, name="ledgerx-probes", daemon=True)
    thread.start()
    return server
