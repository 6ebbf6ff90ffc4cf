"""Idempotent execution of money-moving requests.

How a money service uses it (``idempotent_run``):

1. The durable record (``IdempotencyRecord``, unique per user + endpoint +
   key) is looked up: same fingerprint -> the stored response is returned again
   (``replayed=True``, no movement); different fingerprint -> 422
   ``IdempotencyKeyReused``.
2. An in-flight marker is claimed in the cache (``cache.add``, TTL
   ``settings.IDEMPOTENCY_IN_FLIGHT_SECONDS``); if another request holds it ->
   409 ``IdempotencyInProgress``. If the cache is down the step is skipped.
3. ``before()`` runs (the PIN check, in its own transaction), then ``work()``
   inside ONE ``transaction.atomic(durable=True)``, which also inserts the
   record with the response body. A failure rolls everything back, so a
   failed request never binds its key.
4. If a concurrent duplicate committed first (Redis empty or down), the
   unique constraint refuses our record, our whole transaction rolls back, and
   the caller gets the winner's response (replay) or 409 -- never a 500 and
   never a second movement.

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
from django.db import IntegrityError, connection, transaction

from ledger.balance_cache import (
    balance_cache_forget,
    balance_cache_store,
    cache_errors,
    cache_uses_redis,
    redis_pipeline,
)
from ledger.services import SystemAccountMissing, system_accounts_ensure
from ledgerx.exceptions import ValidationFailed
from transactions.exceptions import IdempotencyInProgress, IdempotencyKeyRequired, IdempotencyKeyReused
from transactions.models import IdempotencyRecord, Transaction
from transactions.movements import KeyBound, Movement, movement_write
from transactions.representations import transaction_representation

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


def _marker_key(user_id, endpoint: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"ledgerx:idem-inflight:{user_id}:{endpoint}:{digest}"


def _marker_claim(marker: str) -> str | None:
    """A token if we hold the marker, None if the cache is down. Raises IdempotencyInProgress."""
    token = secrets.token_hex(8)
    try:
        claimed = cache.add(marker, token, timeout=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS)
    except cache_errors() as exc:
        logger.warning("idempotency marker unavailable (%s); relying on the database", exc)
        return None
    if not claimed:
        raise IdempotencyInProgress()
    return token


# Delete the marker only if it is still ours (it may have expired and been claimed by a retry).
_RELEASE_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _marker_release(marker: str, token: str | None, *, pipeline=None) -> None:
    """Delete the marker if it is still ours; with ``pipeline``, only queue that on it."""
    if token is None:
        return
    try:
        if cache_uses_redis():
            # Compare-and-delete in one round trip instead of GET + DEL.
            client = cache.client
            args = (_RELEASE_LUA, 1, client.make_key(marker), client.encode(token))
            if pipeline is not None:
                pipeline.eval(*args)
            else:
                client.get_client(write=True).eval(*args)
        elif cache.get(marker) == token:
            cache.delete(marker)
    except cache_errors() as exc:
        logger.warning("idempotency marker release failed (%s); it expires by itself", exc)


def _after_commit(snapshots: dict, marker: str, token: str | None) -> None:
    """Store the balances the movement wrote and release its marker: ONE Redis round trip."""
    pipeline = redis_pipeline() if token is not None else None
    if pipeline is None:
        balance_cache_store(snapshots)
        _marker_release(marker, token)
        return
    balance_cache_store(snapshots, pipeline=pipeline)
    _marker_release(marker, token, pipeline=pipeline)
    try:
        pipeline.execute()
    except cache_errors() as exc:
        logger.warning("balance cache store / marker release failed (%s); the marker expires by itself", exc)
        balance_cache_forget(snapshots)


def _record_find(*, user, endpoint: str, key: str) -> IdempotencyRecord | None:
    return (
        IdempotencyRecord.objects.select_related("transaction")
        .filter(user=user, endpoint=endpoint, key=key)
        .first()
    )


_RECORD_PROBE_SQL = (
    f'SELECT 1 FROM "{IdempotencyRecord._meta.db_table}" WHERE "user_id" = %s AND "endpoint" = %s AND "key" = %s'
)


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
) -> MoneyOutcome:
    """Write ``movement`` at most once per (user, endpoint, key); see the module docstring.

    ``before`` (the PIN check) runs only for a key not seen yet: a request
    with a PIN first looks the key up, so a retry is replayed without paying
    for bcrypt again. Without ``before`` the movement's own write is the
    lookup (``transactions.movements``: the key is claimed first, in the same
    statement). Raises IdempotencyKeyReused, IdempotencyInProgress, and
    whatever ``before`` or the movement raise (nothing is written then).
    """
    idempotency_key_validate(key)
    if before is not None and _record_seen(user=user, endpoint=endpoint, key=key):
        record = _record_find(user=user, endpoint=endpoint, key=key)
        if record is not None:
            return _replay(record, fingerprint)
    marker = _marker_key(user.pk, endpoint, key)
    token = _marker_claim(marker)
    try:
        if before is not None:
            before()
        txn = movement.txn
        body = transaction_representation(txn)
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
                snapshots = movement_write(movement, record)
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
            if not transaction.get_connection().in_atomic_block:
                # Committed already (autocommit): cache store + marker release in one round trip.
                released, token = token, None
                _after_commit(snapshots, marker, released)
            elif snapshots:  # inside a caller's transaction (tests): the marker goes in `finally`
                transaction.on_commit(lambda: balance_cache_store(snapshots))
            return MoneyOutcome(transaction=txn, status=201, body=body, replayed=False)
        raise AssertionError("unreachable")
    finally:
        _marker_release(marker, token)
