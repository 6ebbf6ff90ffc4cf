"""The metrics LedgerX exports, and the functions that count into them.

Label values come from small closed sets (movement types, ISO currency codes
from the configuration, error codes of the contract, route templates), so the
number of time series stays bounded whatever the traffic. Callers use the
functions below rather than the metric objects, so each metric has one home
for its names and labels.
"""

from prometheus_client import Counter, Gauge, Histogram

# --- Money -----------------------------------------------------------------------------

MOVEMENTS = Counter(
    "ledgerx_movements",
    "Money movements committed, by transaction type and currency.",
    ["type", "currency"],
)
MOVED = Counter(
    "ledgerx_moved_minor_units",
    "Amounts committed, in minor units of the currency.",
    ["type", "currency"],
)
HOLDS = Counter(
    "ledgerx_holds",
    "Holds by outcome: opened, committed, voided, expired.",
    ["outcome"],
)
BATCH_SIZE = Histogram(
    "ledgerx_batch_items",
    "Items per batch request.",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
BATCH_ITEMS = Counter(
    "ledgerx_batch_item_outcomes",
    "Batch items by outcome: ok or failed.",
    ["outcome"],
)

# --- Refusals, security ----------------------------------------------------------------

API_ERRORS = Counter(
    "ledgerx_api_errors",
    "Error responses of the API, by the contract's error code and HTTP status.",
    ["code", "status"],
)
PIN_FAILURES = Counter("ledgerx_pin_failures", "Wrong transaction PINs.")
SUSPENSIONS = Counter(
    "ledgerx_user_suspensions",
    "Users suspended, by cause: pin (three wrong PINs) or admin.",
    ["cause"],
)
RATE_LIMITED = Counter(
    "ledgerx_rate_limited",
    "Requests refused by a rate limit, by scope (auth.login.ip, api.user, ...).",
    ["scope"],
)
IDEMPOTENCY = Counter(
    "ledgerx_idempotency",
    "Idempotency outcomes other than a first run: replayed, in_progress, key_reused.",
    ["outcome"],
)

# --- Webhooks (counted by manage.py worker) ------------------------------------------------

DELIVERIES = Counter(
    "ledgerx_webhook_deliveries",
    "Webhook delivery attempts, by outcome: delivered (2xx), failed (non-2xx, timeout, refused URL).",
    ["outcome"],
)
DELIVERY_SECONDS = Histogram(
    "ledgerx_webhook_delivery_duration_seconds",
    "Time a receiver took to answer an attempt (or to fail it).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DELIVERY_LAG = Histogram(
    "ledgerx_webhook_delivery_lag_seconds",
    "From the event's commit to the start of its first attempt.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)


def delivery_counted(*, ok: bool, seconds: float, lag_seconds: float | None) -> None:
    DELIVERIES.labels("delivered" if ok else "failed").inc()
    DELIVERY_SECONDS.observe(seconds)
    if lag_seconds is not None:
        DELIVERY_LAG.observe(max(0.0, lag_seconds))


# --- Caches ------------------------------------------------------------------------------

ACCOUNT_CACHE = Counter(
    "ledgerx_account_cache_lookups",
    "Account-state cache lookups, by result: hit or miss.",
    ["result"],
)

REPLICA_READS = Counter(
    "ledgerx_replica_reads",
    "Reads a replica may serve, by where they ran: replica or primary (none fit, not caught up, failed).",
    ["target"],
)

# --- Requests ------------------------------------------------------------------------------

REQUESTS = Counter(
    "ledgerx_http_requests",
    "HTTP requests, by route template, method and status class (2xx, 4xx, ...).",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "ledgerx_http_request_duration_seconds",
    "Time to answer a request, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "ledgerx_http_requests_in_flight",
    "Requests being answered right now (summed over the live workers).",
    multiprocess_mode="livesum",
)
DB_QUERIES = Histogram(
    "ledgerx_http_db_queries",
    "Database queries per request, by route template.",
    ["route"],
    buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89),
)


REVERSALS = Counter("ledgerx_reversals", "Transactions reversed.")


def events_committed(events) -> None:
    """Count what committed, from the events it recorded (anything with ``type`` and ``data``).

    Every change a client can see records its event in the change's own
    transaction, so counting events after commit counts each movement exactly
    once, whichever path wrote it (single, batch, hold, reversal, expiry).
    """
    for event in events:
        data = event.data
        if event.type == "transaction.created":
            if data.get("status") == "pending":
                hold_counted("opened")
            else:
                movement_committed(type=data["type"], currency=data["currency"], amount=data["amount"])
        elif event.type == "transaction.committed":
            hold_counted("committed")
            movement_committed(type=data["type"], currency=data["currency"], amount=data["amount"])
        elif event.type in ("transaction.voided", "transaction.expired"):
            hold_counted(event.type.split(".")[1])
        elif event.type == "transaction.reversed":
            REVERSALS.inc()
        elif event.type == "batch.created":
            batch_counted(size=data["count"], succeeded=data["succeeded"], failed=data["failed"])


def movement_committed(*, type: str, currency: str, amount: int) -> None:
    MOVEMENTS.labels(type, currency).inc()
    MOVED.labels(type, currency).inc(amount)


def hold_counted(outcome: str) -> None:
    HOLDS.labels(outcome).inc()


def batch_counted(*, size: int, succeeded: int, failed: int) -> None:
    BATCH_SIZE.observe(size)
    if succeeded:
        BATCH_ITEMS.labels("ok").inc(succeeded)
    if failed:
        BATCH_ITEMS.labels("failed").inc(failed)


_IDEMPOTENCY_CODES = {"idempotency_in_progress": "in_progress", "idempotency_key_reused": "key_reused"}


def api_error_counted(*, code: str, status: int) -> None:
    API_ERRORS.labels(code, str(status)).inc()
    if code in _IDEMPOTENCY_CODES:
        IDEMPOTENCY.labels(_IDEMPOTENCY_CODES[code]).inc()


def replay_counted() -> None:
    IDEMPOTENCY.labels("replayed").inc()


def pin_failure_counted(*, suspended: bool) -> None:
    PIN_FAILURES.inc()
    if suspended:
        SUSPENSIONS.labels("pin").inc()


def suspension_counted(cause: str) -> None:
    SUSPENSIONS.labels(cause).inc()


def rate_limit_counted(scope: str) -> None:
    RATE_LIMITED.labels(scope).inc()


def replica_read(target: str) -> None:
    REPLICA_READS.labels(target=target).inc()


def account_cache_counted(*, hits: int, misses: int) -> None:
    if hits:
        ACCOUNT_CACHE.labels("hit").inc(hits)
    if misses:
        ACCOUNT_CACHE.labels("miss").inc(misses)
