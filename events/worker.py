"""Delivering webhooks, and the periodic work, for ``manage.py worker``.

Why a small claiming loop and not a job engine: the outbox table already is
the queue (a ``Delivery`` row per event and endpoint, written in the change's
own transaction), so a job engine would add a second queue to keep in step
with it, and procrastinate runs on PostgreSQL only while LedgerX must also
deliver on its embedded SQLite default. The loop is small and as safe:

* **Claim** (``deliveries_claim``): one short transaction marks up to N due
  pending deliveries with this worker's id and a lease (``claimed_until``),
  selected ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent workers
  never claim the same row; on SQLite the database's single writer gives the
  same exclusion. A claimed row is skipped by everyone until its lease ends.
* **Send** outside any transaction, then **record** the outcome only if the
  claim is still ours (``claimed_by``): a worker killed mid-delivery loses
  nothing, its lease runs out and another worker sends the delivery again
  (at-least-once; receivers deduplicate by ``webhook-id``).
* **Retry** with exponential backoff and jitter (``RETRY_SCHEDULE``: 5 s,
  30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, then every 8 h) for as long as
  the endpoint has failed less than 5 days; past that the endpoint is
  disabled, with a ``webhook_endpoint.disabled`` event and an audit record,
  and its pending deliveries are marked failed. A success pulls the
  endpoint's other pending deliveries forward, so a receiver that comes back
  gets its backlog at once, in the order of first attempts.
* **Limits**: 10 s timeout per attempt (``settings.WEBHOOKS_TIMEOUT``, connect
  and whole response), at most ``PER_ENDPOINT`` requests in flight per
  endpoint across all workers (counted as live claims, under a lock of the
  endpoint row: ``deliveries_claim``), a response body over 64 KB is not read. The URL is
  checked again and resolved before each attempt, and the connection goes to
  the address that was checked (no DNS rebinding).
* **Waiting**: an idle worker on PostgreSQL waits for a NOTIFY of new
  deliveries (``deliveries_wait``) for at most its poll interval, so polling
  stays the fallback; SQLite workers just poll.
"""

import http.client
import json
import logging
import os
import random
import socket
import ssl
import threading
import time
import uuid
from urllib.parse import urlsplit
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.services.records import audit_record
from events.models import Delivery, DeliveryWaiter, EventType, WebhookEndpoint
from events.services.addresses import UnsafeUrl, url_resolve
from events.services.endpoints import AUDIT_ENDPOINT_DISABLED
from events.services.recording import event_record
from events.services.representations import event_representation
from events.signing import active_secrets, signature_header
from ledgerx.observability import metrics

logger = logging.getLogger("ledgerx.events.worker")

RETRY_SCHEDULE = [5, 30, 120, 600, 1800, 3600, 7200, 14400]  # seconds; then the last step of 8 h
RETRY_STEP_AFTER = 28800
JITTER = 0.2  # +-20 %
DISABLE_AFTER = timedelta(days=5)
LEASE = timedelta(seconds=60)  # > the 10 s timeout with room: a live worker never loses its claim
RESPONSE_MAX = 64 * 1024
PER_ENDPOINT = 4  # deliveries of one endpoint claimed (in flight) at a time, by all workers together
USER_AGENT = "LedgerX-Webhooks/1"


def retry_delay(attempts: int, *, rng=random) -> float:
    """Seconds before attempt ``attempts + 1`` after ``attempts`` failures, jittered."""
    base = RETRY_SCHEDULE[attempts - 1] if attempts <= len(RETRY_SCHEDULE) else RETRY_STEP_AFTER
    return base * (1 + rng.uniform(-JITTER, JITTER))


# --- Claiming -----------------------------------------------------------------------


def _endpoints_full(now: datetime):
    """Endpoints with ``PER_ENDPOINT`` live claims (a subquery, read on the small index of leased rows)."""
    return (
        Delivery.objects.filter(claimed_until__gte=now)
        .values("endpoint_id")
        .annotate(leased=Count("id"))
        .filter(leased__gte=PER_ENDPOINT)
        .values("endpoint_id")
    )


def deliveries_claim(*, worker_id: str, limit: int, now: datetime | None = None) -> list[uuid.UUID]:
    """Claim up to ``limit`` due deliveries of enabled endpoints for ``worker_id``; returns their ids.

    At most ``PER_ENDPOINT`` deliveries of one endpoint are claimed at a time
    by all workers together: the claim locks the candidates' endpoint rows
    (``FOR NO KEY UPDATE``, which does not wait for or block the movements
    adding deliveries, and ``SKIP LOCKED``: an endpoint another worker is
    claiming for right now is left to it), counts their live claims and takes
    only what fits. Endpoints already full are left out of the candidates, so
    one endpoint's backlog does not fill a pass and starve the others.
    """
    now = now or timezone.now()
    with transaction.atomic(durable=not connection.in_atomic_block):
        due = (
            Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .filter(endpoint__status=WebhookEndpoint.Status.ENABLED)
            .exclude(endpoint_id__in=_endpoints_full(now))
            .order_by("next_attempt_at", "xid", "id")
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        candidates = list(due.values_list("id", "endpoint_id")[:limit])
        if not candidates:
            return []
        # SQLite has no row locks: its single writer already serializes the claims.
        endpoints = WebhookEndpoint.objects.filter(pk__in={endpoint for _id, endpoint in candidates}).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            endpoints = endpoints.select_for_update(no_key=True, skip_locked=True)
        locked = list(endpoints.values_list("pk", flat=True))
        live = dict(
            Delivery.objects.filter(endpoint_id__in=locked, claimed_until__gte=now)
            .values("endpoint_id")
            .annotate(leased=Count("id"))
            .values_list("endpoint_id", "leased")
        )
        room = {endpoint: PER_ENDPOINT - live.get(endpoint, 0) for endpoint in locked}
        ids = []
        for delivery_id, endpoint in candidates:
            if room.get(endpoint, 0) > 0:
                ids.append(delivery_id)
                room[endpoint] -= 1
        if not ids:
            return []
        # Conditional, so that without row locks (SQLite) a row another worker
        # claimed meanwhile is not taken over; the ids we really got are read back.
        until = now + LEASE
        Delivery.objects.filter(id__in=ids).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).update(
            claimed_by=worker_id, claimed_until=until
        )
        return list(
            Delivery.objects.filter(id__in=ids, claimed_by=worker_id, claimed_until=until)
            .order_by("next_attempt_at", "xid", "id")
            .values_list("id", flat=True)
        )


# --- Sending ------------------------------------------------------------------------


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one already-checked address, with SNI and certificate checks for the host name."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP (``WEBHOOKS_ALLOW_INSECURE`` only) to one already-checked address."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def _post(url: str, body: bytes, headers: dict, timeout: float) -> int:
    """POST and return the status; reads at most ``RESPONSE_MAX`` bytes of the answer. Raises OSError, UnsafeUrl."""
    scheme, host, port, addresses = url_resolve(url)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = kind(host, port, address=addresses[0], timeout=timeout)
    deadline = time.monotonic() + timeout
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        length = response.getheader("Content-Length")
        if not (length and length.isdigit() and int(length) > RESPONSE_MAX):
            remaining = RESPONSE_MAX
            while remaining > 0 and time.monotonic() < deadline:
                chunk = response.read(min(remaining, 8192))
                if not chunk:
                    break
                remaining -= len(chunk)
        return response.status
    finally:
        conn.close()


def delivery_request(delivery: Delivery, *, now: datetime | None = None) -> tuple[bytes, dict]:
    """The body and Standard Webhooks headers of ``delivery`` (the event as ``GET events/{id}`` shows it)."""
    now = now or timezone.now()
    event = delivery.event
    body = json.dumps(event_representation(event), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": str(event.pk),
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature_header(
            secrets_=active_secrets(delivery.endpoint, now=now), msg_id=str(event.pk), timestamp=now, body=body.decode()
        ),
    }
    return body, headers


def delivery_attempt(delivery, *, worker_id: str) -> bool:
    """Send one claimed delivery (a Delivery with its event and endpoint, or its id) and record the outcome.

    Returns True if the receiver answered 2xx.
    """
    if not isinstance(delivery, Delivery):
        delivery = Delivery.objects.select_related("event", "endpoint").get(pk=delivery)
    started = timezone.now()
    clock = time.monotonic()
    status_code, error = None, ""
    try:
        body, headers = delivery_request(delivery, now=started)
        status_code = _post(delivery.endpoint.url, body, headers, settings.WEBHOOKS_TIMEOUT)
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except UnsafeUrl as exc:
        error = f"refused: {exc}"
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500] or "connection failed"
    duration_ms = int((time.monotonic() - clock) * 1000)
    ok = not error
    first = delivery.attempts == 0
    metrics.delivery_counted(
        ok=ok,
        seconds=time.monotonic() - clock,
        lag_seconds=(started - delivery.event.created_at).total_seconds() if first else None,
    )
    _outcome_record(delivery, worker_id=worker_id, ok=ok, status_code=status_code, error=error, duration_ms=duration_ms, at=started)
    return ok


def _outcome_record(delivery: Delivery, *, worker_id, ok, status_code, error, duration_ms, at) -> None:
    """Write the attempt's outcome if the claim is still ours (else another worker owns the delivery now).

    The common case, a success to an endpoint that was answering, is one UPDATE.
    """
    now = timezone.now()
    mine = Delivery.objects.filter(pk=delivery.pk, claimed_by=worker_id, status=Delivery.Status.PENDING)
    attempts = delivery.attempts + 1
    common = dict(
        attempts=attempts, last_attempt_at=at, last_status_code=status_code, last_duration_ms=duration_ms,
        last_error=error, claimed_by="", claimed_until=None,
    )
    if ok:
        if not mine.update(status=Delivery.Status.SUCCEEDED, delivered_at=now, next_attempt_at=None, **common):
            return  # our lease had expired and someone else owns it now: their outcome counts
        if delivery.endpoint.failing_since is not None:
            with transaction.atomic(durable=not connection.in_atomic_block):
                if WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, failing_since__isnull=False).update(
                    failing_since=None
                ):
                    # The receiver is back: its backlog is due now, in the order of first attempts.
                    Delivery.objects.filter(
                        endpoint_id=delivery.endpoint_id, status=Delivery.Status.PENDING, next_attempt_at__gt=now
                    ).update(next_attempt_at=now)
        return
    with transaction.atomic(durable=not connection.in_atomic_block):
        if not mine.update(next_attempt_at=now + timedelta(seconds=retry_delay(attempts)), **common):
            return
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        if endpoint.failing_since is None:
            endpoint.failing_since = at
            endpoint.save(update_fields=["failing_since"])
        elif endpoint.status == WebhookEndpoint.Status.ENABLED and now - endpoint.failing_since >= DISABLE_AFTER:
            _endpoint_give_up(endpoint, now=now)


def _endpoint_give_up(endpoint: WebhookEndpoint, *, now) -> None:
    """Disable an endpoint that failed for 5 days: its owner gets an event, the trail an audit record."""
    endpoint.status = WebhookEndpoint.Status.DISABLED
    endpoint.disabled_reason = "Failing for 5 days."
    endpoint.save(update_fields=["status", "disabled_reason"])
    Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED, next_attempt_at=None, claimed_by="", claimed_until=None
    )
    data = {"id": str(endpoint.pk), "url": endpoint.url, "status": endpoint.status, "reason": endpoint.disabled_reason,
            "failing_since": endpoint.failing_since.isoformat()}
    event_record(type=EventType.WEBHOOK_ENDPOINT_DISABLED, data=data, user_ids=[endpoint.owner_id])
    audit_record(actor=None, action=AUDIT_ENDPOINT_DISABLED, target_type="webhook_endpoint", target_id=endpoint.pk, data=data)


# --- One pass and the loop ------------------------------------------------------------


def deliveries_run(*, worker_id: str, limit: int = 100, pool: ThreadPoolExecutor | None = None) -> int:
    """Claim and send one batch of due deliveries; returns how many were attempted.

    Without ``pool`` the deliveries are sent one after the other in this
    thread (tests, SQLite); with it, concurrently (the claim already holds
    each endpoint to ``PER_ENDPOINT``).
    """
    ids = deliveries_claim(worker_id=worker_id, limit=limit)
    if not ids:
        return 0
    # One query for the whole batch, in claim order (oldest due first, then the log's order).
    loaded = Delivery.objects.select_related("event", "endpoint").in_bulk(ids)
    claimed = [loaded[delivery_id] for delivery_id in ids if delivery_id in loaded]
    if pool is None:
        for delivery in claimed:
            delivery_attempt(delivery, worker_id=worker_id)
        return len(ids)

    def send(delivery):
        try:
            delivery_attempt(delivery, worker_id=worker_id)
        except Exception:  # one bad delivery must not stop the batch; its lease expires and it is retried
            logger.exception("delivery %s failed unexpectedly", delivery.pk)
        finally:
            close_old_connections()

    list(pool.map(send, claimed))
    return len(ids)


def deliveries_prune(*, now: datetime | None = None) -> int:
    """Delete finished deliveries older than ``settings.WEBHOOKS_DELIVERY_RETENTION_DAYS`` (events stay).

    Also forgets the waits of workers that died waiting (``DeliveryWaiter``).
    """
    now = now or timezone.now()
    DeliveryWaiter.objects.filter(until__lt=now).delete()
    cutoff = now - timedelta(days=settings.WEBHOOKS_DELIVERY_RETENTION_DAYS)
    return Delivery.objects.filter(created_at__lt=cutoff).exclude(status=Delivery.Status.PENDING).delete()[0]


# --- Waiting for work (PostgreSQL) ---------------------------------------------------

WAKE_CHANNEL = "ledgerx_deliveries"
WAIT_GRACE = timedelta(seconds=1)  # a waiter stays announced a little past its wait: the next pass


def deliveries_wait(*, worker_id: str, timeout: float) -> bool:
    """PostgreSQL: wait up to ``timeout`` seconds for a NOTIFY of a new delivery; True if one came.

    The worker LISTENs on its own connection, then announces that it waits
    (``DeliveryWaiter``): only then does the database notify (trigger of
    ``events/0006``), since PostgreSQL serializes the commits of notifying
    transactions and a busy system, whose workers never wait, should not pay
    for that. A notification is only a hint to look now; a delivery committed
    around the announcement may go unannounced and waits for the timeout, as
    with polling alone. Raises DatabaseError when the connection fails.
    """
    until = timezone.now() + timedelta(seconds=timeout) + WAIT_GRACE
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {WAKE_CHANNEL}")
        cursor.execute(
            'INSERT INTO "events_deliverywaiter" ("worker_id", "until") VALUES (%s, %s) '
            'ON CONFLICT ("worker_id") DO UPDATE SET "until" = EXCLUDED."until"',
            [worker_id, until],
        )
    with connection.wrap_database_errors:
        for _notify in connection.connection.notifies(timeout=timeout, stop_after=1):
            return True
    return False


def deliveries_wait_end(*, worker_id: str) -> None:
    """The worker stops waiting for good (it is shutting down): writers need not notify it any more."""
    DeliveryWaiter.objects.filter(worker_id=worker_id).delete()


def _periodic_tasks():
    from audit.services.sealing import audit_seal_pending
    from fx.services import quote_purge
    from transactions.services.holds import hold_expire
    from transactions.services.housekeeping import idempotency_purge

    return [
        ("expire_holds", 60, hold_expire),
        ("seal_audit", 60, lambda: audit_seal_pending(wait=False)),
        ("purge_idempotency", 3600, idempotency_purge),
        ("prune_deliveries", 3600, deliveries_prune),
        ("purge_fx_quotes", 3600, quote_purge),
    ]


class Worker:
    """The ``manage.py worker`` loop: deliveries as they come due, periodic work on its interval."""

    def __init__(self, *, concurrency: int = 8, poll: float = 0.2, batch: int = 100, periodic: bool = True, log=None):
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.concurrency, self.poll, self.batch = concurrency, poll, batch
        self.tasks = _periodic_tasks() if periodic else []
        self.next_run = {name: 0.0 for name, _every, _run in self.tasks}
        self.stopping = threading.Event()
        self.log = log or (lambda message: logger.info(message))
        # Idle: wait for a NOTIFY (PostgreSQL) at most ``poll`` seconds, else just sleep ``poll``.
        self.listen = settings.WEBHOOKS_LISTEN and connection.vendor == "postgresql"

    def periodic_run(self) -> None:
        for name, every, run in self.tasks:
            if time.monotonic() < self.next_run[name]:
                continue
            self.next_run[name] = time.monotonic() + every
            try:
                result = run()
                if result:
                    self.log(f"{name}: {result}")
            except Exception:  # the next interval tries again; the commands stay for operators
                logger.exception("periodic task %s failed", name)

    def run(self, *, once: bool = False) -> None:
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook") if self.concurrency > 1 else None
        try:
            while not self.stopping.is_set():
                self.periodic_run()
                try:
                    sent = deliveries_run(worker_id=self.worker_id, limit=self.batch, pool=pool)
                except Exception:  # e.g. the database restarting: reconnect on the next pass
                    logger.exception("claiming deliveries failed; retrying")
                    close_old_connections()
                    connection.close()
                    sent = 0
                    self.stopping.wait(1)
                if once and not sent:
                    return
                if not sent:
                    self.idle_wait()
        finally:
            if self.listen:
                try:
                    deliveries_wait_end(worker_id=self.worker_id)
                except (DatabaseError, InterfaceError):  # its announcement simply expires
                    pass
            if pool is not None:
                _pool_close(pool, self.concurrency)

    def idle_wait(self) -> None:
        """Nothing was due: wait for a NOTIFY of new deliveries (PostgreSQL) or the poll interval."""
        if not self.listen:
            self.stopping.wait(self.poll)
            return
        try:
            deliveries_wait(worker_id=self.worker_id, timeout=self.poll)
        except (DatabaseError, InterfaceError):  # e.g. the database restarting: poll; the next pass reconnects
            logger.exception("waiting for deliveries failed; polling")
            connection.close()
            self.stopping.wait(self.poll)


def _pool_close(pool: ThreadPoolExecutor, size: int) -> None:
    """Close each pool thread's database connection, then the pool.

    A barrier of ``size`` makes every thread take exactly one of the closing tasks.
    """
    barrier = threading.Barrier(size, timeout=30)

    def close():
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        connection.close()

    for _ in range(size):
        pool.submit(close)
    pool.shutdown(wait=True)
