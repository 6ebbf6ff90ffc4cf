"""Production server configuration (gunicorn reads ./gunicorn.conf.py by default).

Threaded workers (gthread), one process per core plus one, a few threads each:
LedgerX's request cost is CPU (bcrypt for passwords and PINs, JSON, the ORM)
and short database round trips, so more processes than cores only adds context
switches. But a sync worker inside bcrypt (a quarter of a second at cost 12)
cannot answer anything else: when every worker was hashing, /readyz queued
behind them and probes flapped. bcrypt releases the GIL while it hashes, so a
worker's other threads keep answering probes and light requests meanwhile
(measured: README "Security"). Each thread keeps its own database connection
(CONN_MAX_AGE): workers x threads connections; the Redis pool is per process.
"""

import json
import multiprocessing
import os
import shutil
import tempfile

# Metrics of every worker in one exposition (prometheus-client's multiprocess
# mode): each process writes its counters to files in this directory, and
# GET /metrics sums them. It must be set before the application (and so
# prometheus_client) is imported, i.e. here. A directory of our own per server
# start, unless the deployment names one (it is emptied at start either way).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="ledgerx-metrics-"))
# Counters of a previous run must not be added to this one's.
shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

bind = os.environ.get("LEDGERX_BIND", "0.0.0.0:8000")
# /healthz and /readyz on a port of their own, answered by a thread of each
# worker that never waits behind the request threads (ledgerx.server.probes).
probe_bind = os.environ.get("LEDGERX_PROBE_BIND", "")
workers = int(os.environ.get("LEDGERX_WORKERS", multiprocessing.cpu_count() + 1))
# gthread, with gunicorn's own refusals (below) answered in the JSON envelope.
worker_class = "ledgerx.server.workers.JsonErrorThreadWorker"
threads = int(os.environ.get("LEDGERX_THREADS", 4))
timeout = int(os.environ.get("LEDGERX_WORKER_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak can never take the service down.
max_requests = 20000
max_requests_jitter = 2000
preload_app = True
forwarded_allow_ips = os.environ.get("LEDGERX_FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn refuses what is over these limits itself, before Django sees it; the
# worker class answers in the JSON envelope (414 for the line, 431 for the
# headers, 400 for a line that is not HTTP). No LedgerX request comes near them (the longest is a cursor-paginated list URL,
# well under 1 KB; a bearer token is ~400 bytes); a proxy in front should apply
# the same or tighter limits (README "Security").
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# One JSON object per request, the same shape as the application's logs.
accesslog = "-" if os.environ.get("LEDGERX_ACCESS_LOG", "1") == "1" else None
access_log_format = json.dumps(
    {
        "logger": "gunicorn.access",
        "remote_addr": "%(h)s",
        "request_id": "%({x-request-id}o)s",
        "method": "%(m)s",
        "path": "%(U)s",
        "status": "%(s)s",
        "bytes": "%(B)s",
        "duration_ms": "%(M)s",
        "user_agent": "%(a)s",
    }
)
errorlog = "-"
loglevel = os.environ.get("LEDGERX_LOG_LEVEL", "info").lower()


def child_exit(server, worker):
    # A dead worker's counters stay in the sums; its live gauges do not.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    if probe_bind:
        from ledgerx.server.probes import start_probe_listener

        start_probe_listener(probe_bind)


def post_fork(server, worker):
    # Connections must never be shared across a fork: each worker opens its own.
    from django.db import connections

    for connection in connections.all():
        connection.close()
