"""Production server configuration (gunicorn reads ./gunicorn.conf.py by default).

Sync workers, one per core plus one: LedgerX's request cost is CPU (bcrypt for
PINs, JSON, the ORM) and short database round trips, so more processes than
cores only adds context switches. Each worker keeps its database connection
(CONN_MAX_AGE) and its Redis connection pool between requests.
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
workers = int(os.environ.get("LEDGERX_WORKERS", multiprocessing.cpu_count() + 1))
worker_class = "sync"
timeout = int(os.environ.get("LEDGERX_WORKER_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak can never take the service down.
max_requests = 20000
max_requests_jitter = 2000
preload_app = True
forwarded_allow_ips = os.environ.get("LEDGERX_FORWARDED_ALLOW_IPS", "127.0.0.1")

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


def post_fork(server, worker):
    # Connections must never be shared across a fork: each worker opens its own.
    from django.db import connections

    for connection in connections.all():
        connection.close()
