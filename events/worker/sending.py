"""Sending one claimed delivery to its checked address, and recording the outcome while the claim is ours."""

import http.client
import json
import random
import socket
import ssl
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.services.records import audit_record
from events.models import Delivery, EventType, WebhookEndpoint
from events.services.addresses import UnsafeUrl, url_resolve
from events.services.endpoints import AUDIT_ENDPOINT_DISABLED
from events.services.recording import event_record
from events.services.representations import event_representation
from events.signing import active_secrets, signature_header
from ledgerx.observability import metrics

RETRY_SCHEDULE = [5, 30, 120, 600, 1800, 3600, 7200, 14400]  # seconds; then the last step of 8 h
RETRY_STEP_AFTER = 28800
JITTER = 0.2  # +-20 %
DISABLE_AFTER = timedelta(days=5)
RESPONSE_MAX = 64 * 1024
USER_AGENT = "LedgerX-Webhooks/1"


def retry_delay(attempts: int, *, rng=random) -> float:
    """Seconds before attempt ``attempts + 1`` after ``attempts`` failures, jittered."""
    base = RETRY_SCHEDULE[attempts - 1] if attempts <= len(RETRY_SCHEDULE) else RETRY_STEP_AFTER
    return base * (1 + rng.uniform(-JITTER, JITTER))


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
