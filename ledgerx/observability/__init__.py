"""What an operations team watches: Prometheus metrics and (opt-in) OpenTelemetry traces.

* ``metrics``: every metric LedgerX exports, with small fixed label sets (never
  a user, account or transaction id), and the one-line functions the code
  calls to count things. Counting is in-process and cheap; nothing here talks
  to the network on the request path.
* ``middleware``: per-request latency, counts by route template and status
  class, requests in flight and database queries per request.
* ``views``: ``GET /metrics`` behind ``LEDGERX_METRICS_TOKEN`` (off without it).
* ``collectors``: gauges read from the database at scrape time (audit records
  not yet sealed, open holds), so they are right whichever process did the work.

Several gunicorn workers share one exposition through prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set up by gunicorn.conf.py).
"""
