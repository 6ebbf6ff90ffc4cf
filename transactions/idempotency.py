"""Idempotent execution of money-moving requests.

How a money service uses it (``idempotent_run``):

1. In-flight guard: a second request with the same key while the first is
   still running gets 409 ``IdempotencyInProgress``. On PostgreSQL the guard
   is an advisory lock on a hash of (user, endpoint, key) (``_AdvisoryLock``):
   no Redis round trip, and a worker that dies releases it with its
   connection. Elsewhere it is a cache marker with a TTL (``_CacheMarker``),
   skipped when the cache is down.
2. A request with a PIN looks its key up first (in the same statement as the
   guard on PostgreSQL): a bound key with the same fingerprint is replayed
   without the PIN check (``replayed=True``, no movement), with another
   fingerprint it is 422 ``IdempotencyKeyReused``. Then ``before()`` (the PIN
   check, bcrypt, in its own transaction) runs, holding the guard.
3. The movement is written (``transactions.movements``) with its idempotency
   record in one durable transaction -- on PostgreSQL one statement that also
   claims the key first. A failure rolls everything back, so a failed request
   never binds its key.
4. If the key was bound meanwhile (a retry of a finished request without a
   PIN, or a concurrent duplicate that got past the guard), the unique key
   refuses the write, nothing of ours is kept, and the caller gets the
   stored response (replay) or 422 -- never a 500 and never a second movement.

The request fingerprint is a SHA-256 of the canonical request (sorted-key
JSON of the service's arguments, without the PIN), so the same request sent
with keys in another order or with defaulted fields spelled out is the same.
"""

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection

from ledger.balance_cache import cache_errors, cache_uses_redis
from ledger.services import SystemAccountMissing, system_accounts_ensure
from ledgerx.exceptions import ValidationFailed
from ledgerx.fastsql import prepared_cursor
from transactions.exceptions import IdempotencyInProgress, IdempotencyKeyRequired, IdempotencyKeyReused
from transactions.models import IdempotencyRecord, Transaction
from transactions.movements import KeyBound, Movement, movement_write

logger = logging.getLogger("ledgerx.transactions.idempotency")


@dataclass(frozen=True)
class MoneyOutcome:
    """What a money-moving service hands back to its caller.

    ``status`` and ``body`` are the exact response (stored, and replayed on a
    retry); ``replayed`` is True when nothing moved because the key was seen.
    """

    transaction: Transaction
    status: int
    body: dict
    replayed: bool


def idempotency_key_validate(key) -> str:
    """Raises IdempotencyKeyRequired if missing/empty, ValidationFailed if malformed."""
    if key is None or key == "":
        raise IdempotencyKeyRequired()
    if not isinstance(key, str) or len(key) > 255 or not all(" " <= char <= "~" for char in key) or not key.strip():
        raise ValidationFailed(
            "The Idempotency-Key header must be 1-255 printable ASCII characters.",
            fields={"Idempotency-Key": ["Must be 1-255 printable ASCII characters."]},
        )
    return key


def request_fingerprint(endpoint: str, request: dict) -> str:
    canonical = json.dumps({"endpoint": endpoint, **request}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _InFlightGuard:
    """Refuses (409) a second request with the same key while the first is running.

    ``claim`` (no PIN: the movement is the only step) or ``claim_and_probe``
    (before a PIN check: also looks the key up, True if it is bound already)
    first; ``written`` once the movement committed; ``release`` always.
    ``lock_key``/``session_locked`` are what the PostgreSQL movement function
    is told (``transactions.movements.movement_write``).
    """

    lock_key: int | None = None
    session_locked = False

    def claim(self) -> None:
        raise NotImplementedError

    def claim_and_probe(self, *, user, endpoint: str, key: str) -> bool:
        raise NotImplementedError

    def written(self) -> None:
        pass

    def release(self) -> None:
        pass


class _CacheMarker(_InFlightGuard):
    """The in-flight guard where the database has no advisory locks (SQLite): a marker in the cache.

    Claimed with ``cache.add`` (TTL ``settings.IDEMPOTENCY_IN_FLIGHT_SECONDS``, so
    a request whose worker died can be retried), released by compare-and-delete.
    With the cache down the guard is skipped and the database's unique key
    is the only guard (a duplicate then replays instead of getting 409).
    """

    def __init__(self, user_id, endpoint: str, key: str):
        digest = hashlib.sha256(key.encode()).hexdigest()
        self.marker = f"ledgerx:idem-inflight:{user_id}:{endpoint}:{digest}"
        self.token: str | None = None

    def claim(self) -> None:
        token = secrets.token_hex(8)
        try:
            claimed = cache.add(self.marker, token, timeout=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS)
        except cache_errors() as exc:
            logger.warning("idempotency marker unavailable (%s); relying on the database", exc)
            return
        if not claimed:
            raise IdempotencyInProgress()
        self.token = token

    def claim_and_probe(self, *, user, endpoint: str, key: str) -> bool:
        """Claim, unless the key is bound already: then True (replay it)."""
        if _record_seen(user=user, endpoint=endpoint, key=key):
            return True
        self.claim()
        return False

    def release(self) -> None:
        if self.token is None:
            return
        try:
            if cache_uses_redis():
                # Compare-and-delete in one round trip: the marker may have expired and been claimed by a retry.
                client = cache.client
                client.get_client(write=True).eval(
                    _RELEASE_LUA, 1, client.make_key(self.marker), client.encode(self.token)
                )
            elif cache.get(self.marker) == self.token:
                cache.delete(self.marker)
        except cache_errors() as exc:
            logger.warning("idempotency marker release failed (%s); it expires by itself", exc)
        self.token = None


_RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class _AdvisoryLock(_InFlightGuard):
    """The in-flight guard on PostgreSQL: an advisory lock on a 64-bit hash of (user, endpoint, key).

    No Redis round trip on the money path, and nothing to expire: the lock
    dies with the connection of a worker that died (and PostgreSQL ends the
    session of a host that vanished within about a minute: the keepalive
    options in ``ledgerx/settings.py``). Without a PIN check the
    movement function itself try-locks it for its transaction (a concurrent
    duplicate gets ``in_progress``). With a PIN check, one statement takes it
    at session level and probes the key before bcrypt runs; the movement
    function releases it when it succeeds, ``release`` otherwise.
    """

    def __init__(self, user_id, endpoint: str, key: str):
        digest = hashlib.sha256(f"{user_id}\n{endpoint}\n{key}".encode()).digest()
        self.lock_key = int.from_bytes(digest[:8], "big", signed=True)
        self.session_locked = False

    def claim(self) -> None:
        """Nothing to do: the movement function try-locks ``lock_key`` for its own transaction."""

    def claim_and_probe(self, *, user, endpoint: str, key: str) -> bool:
        with prepared_cursor() as cursor:
            cursor.execute(_CLAIM_AND_PROBE_SQL, [self.lock_key, user.pk, endpoint, key])
            claimed, seen = cursor.fetchone()
        self.session_locked = claimed
        if seen:
            return True
        if not claimed:
            raise IdempotencyInProgress()
        return False

    def written(self) -> None:
        self.session_locked = False  # the movement function released it

    def release(self) -> None:
        if self.session_locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [self.lock_key])
            self.session_locked = False


def _in_flight_guard(user, endpoint: str, key: str) -> _InFlightGuard:
    guard = _AdvisoryLock if connection.vendor == "postgresql" else _CacheMarker
    return guard(user.pk, endpoint, key)


def _record_find(*, user, endpoint: str, key: str) -> IdempotencyRecord | None:
    return (
        IdempotencyRecord.objects.select_related("transaction")
        .filter(user=user, endpoint=endpoint, key=key)
        .first()
    )


_RECORD_PROBE_TEMPLATE = (
    f'SELECT 1 FROM "{IdempotencyRecord._meta.db_table}" WHERE "user_id" = %s{{uuid}} AND "endpoint" = %s AND "key" = %s'
)
_RECORD_PROBE_SQL = _RECORD_PROBE_TEMPLATE.format(uuid="")
# Prepared (``prepared_cursor``), so the casts type the parameters.
_CLAIM_AND_PROBE_SQL = f"SELECT pg_try_advisory_lock(%s::bigint), EXISTS ({_RECORD_PROBE_TEMPLATE.format(uuid='::uuid')})"


def _record_seen(*, user, endpoint: str, key: str) -> bool:
    """Whether the key is bound: a plain indexed probe, without compiling an ORM query.

    Almost every request carries a fresh key, so the miss is the hot path; a
    hit then loads the record through the ORM (``_record_find``).
    """
    user_id = IdempotencyRecord._meta.get_field("user").get_db_prep_value(user.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_PROBE_SQL, [user_id, endpoint, key])
        return cursor.fetchone() is not None


def _replay(record: IdempotencyRecord, fingerprint: str) -> MoneyOutcome:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return MoneyOutcome(
        transaction=record.transaction, status=record.response_status, body=record.response_body, replayed=True
    )


def idempotent_run(
    *,
    user,
    endpoint: str,
    key: str,
    fingerprint: str,
    movement: Movement,
    before: Callable[[], None] | None = None,
    before_needless: Callable[[], bool] | None = None,
) -> MoneyOutcome:
    """Write ``movement`` at most once per (user, endpoint, key); see the module docstring.

    ``before`` (the PIN check) runs only for a key not seen yet: a request
    with a PIN first looks the key up, so a retry is replayed without paying
    for bcrypt again. Without ``before`` the movement's own write is the
    lookup (``transactions.movements``: the key is claimed first, in the same
    statement). ``before_needless`` (a PIN proven from the cache,
    ``accounts.services.pin_proven``) returning True means ``before`` would
    pass and write nothing: the request then takes the path without
    ``before``, one round trip fewer, with the same answer for a new key, a
    finished one and one in flight. Raises IdempotencyKeyReused,
    IdempotencyInProgress, and whatever ``before`` or the movement raise
    (nothing is written then).
    """
    idempotency_key_validate(key)
    guard = _in_flight_guard(user, endpoint, key)
    try:
        if before is not None and not (before_needless is not None and before_needless()):
            if guard.claim_and_probe(user=user, endpoint=endpoint, key=key):
                record = _record_find(user=user, endpoint=endpoint, key=key)
                if record is not None:
                    return _replay(record, fingerprint)
            before()
        else:
            guard.claim()
            if connection.vendor != "postgresql":
                # The key comes first in the refusal order: a retry of a finished
                # request is replayed even if the rules would now refuse it (an
                # account frozen since). On PostgreSQL the function claims the
                # key before its checks, in the same statement.
                record = _record_find(user=user, endpoint=endpoint, key=key)
                if record is not None:
                    return _replay(record, fingerprint)
        txn = movement.txn
        body = movement.body
        record = IdempotencyRecord(
            user=user,
            endpoint=endpoint,
            key=key,
            fingerprint=fingerprint,
            response_status=201,
            response_body=body,
            transaction=txn,
            created_at=txn.created_at,
        )
        for attempt in (1, 2):
            try:
                movement_write(movement, record, lock_key=guard.lock_key, unlock_session=guard.session_locked)
            except SystemAccountMissing:
                if attempt == 2:
                    raise
                system_accounts_ensure(currency=txn.currency)
                continue
            except (KeyBound, IntegrityError):
                # The key was bound first (a retry of a finished request, or a
                # concurrent duplicate that won): everything of ours was rolled back.
                found = _record_find(user=user, endpoint=endpoint, key=key)
                if found is None:
                    raise
                return _replay(found, fingerprint)
            guard.written()
            return MoneyOutcome(transaction=txn, status=201, body=body, replayed=False)
        raise AssertionError("unreachable")
    finally:
        guard.release()
