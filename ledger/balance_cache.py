"""Account cache: an account as the API shows it, read without a database query.

An entry holds what the account endpoint returns. Its *identity* (owner, kind,
number, currency, opening time) never changes once the account is opened. Its
*state* (``Snapshot``: posted, pending, status, name) changes only under the
account's row lock, and every change bumps the row's ``version``, so a
version names one exact state. Writers store the state they just wrote from
``transaction.on_commit``, i.e. before their HTTP response is sent; readers
that miss load the row and store state and identity. Every state store is
*version-guarded* (compare-and-set: only a higher version replaces it), so two
commits whose callbacks run in the opposite order, or a slow reader storing an
old row, can never push the cache backwards. Hence a client that received a
response for change N reads a version >= N.

With Redis configured the guard is a Lua script (atomic across workers); with
the in-process cache it is a process lock. Any cache failure degrades to the
database: reads answer from PostgreSQL, writes skip the cache.
"""

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import NoScriptError

from ledgerx.observability import metrics

logger = logging.getLogger("ledgerx.ledger.cache")

TTL_SECONDS = 60  # also bounds how long another process can serve an entry it could not drop
_local_lock = threading.Lock()

# Per key, ARGV holds the state (posted, pending, version, status, name) and the
# identity (kind, owner, number, currency, created_at), the identity empty when
# the writer does not have it (movements return only the state).
_STORE_LUA = """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 10
  local version = tonumber(ARGV[base + 3])
  local current = redis.call('HGET', key, 'v')
  if (not current) or tonumber(current) < version then
    redis.call('HSET', key, 'p', ARGV[base + 1], 'q', ARGV[base + 2], 'v', ARGV[base + 3],
               's', ARGV[base + 4], 'n', ARGV[base + 5])
  end
  if ARGV[base + 6] ~= '' then
    redis.call('HSET', key, 'k', ARGV[base + 6], 'o', ARGV[base + 7], 'no', ARGV[base + 8],
               'c', ARGV[base + 9], 't', ARGV[base + 10])
  end
  redis.call('EXPIRE', key, ttl)
end
return 1
"""
_STORE_SHA = hashlib.sha1(_STORE_LUA.encode()).hexdigest()
_FIELDS = ("p", "q", "v", "s", "n", "k", "o", "no", "c", "t")


class Snapshot(NamedTuple):
    """An account's changing state at ``version`` (every change to any of these fields bumps it)."""

    posted: int
    pending: int
    version: int
    status: str
    name: str

    @classmethod
    def of(cls, account) -> "Snapshot":
        """The state of a row read from the database (or locked and written by the caller)."""
        return cls(account.posted, account.pending, account.version, account.status, account.name)


class Identity(NamedTuple):
    """What never changes once an account is opened."""

    kind: str
    owner_id: str  # "" for a system account
    number: str
    currency: str
    created_at: datetime

    @classmethod
    def of(cls, account) -> "Identity":
        return cls(account.kind, str(account.owner_id or ""), account.number, account.currency, account.created_at)


def _uses_redis() -> bool:
    return "django_redis" in settings.CACHES["default"]["BACKEND"]


def cache_uses_redis() -> bool:
    """Whether the default cache is Redis (django-redis), so raw Redis commands can be used."""
    return _uses_redis()


def cache_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    try:
        from django_redis.exceptions import ConnectionInterrupted
        from redis.exceptions import RedisError

        errors += [ConnectionInterrupted, RedisError]
    except ImportError:  # pragma: no cover - django-redis is a requirement
        pass
    return tuple(errors)


def _key(account_id) -> str:
    return f"ledgerx:account:{account_id}"


def balance_cache_store(snapshots: dict, identities: dict | None = None) -> None:
    """Store {account_id: Snapshot}, keeping whichever version is newer, and the ``identities`` given."""
    if not snapshots:
        return
    identities = identities or {}
    try:
        if _uses_redis():
            from django_redis import get_redis_connection

            client = get_redis_connection("default")
            keys, args = [], [TTL_SECONDS]
            for account_id, snap in snapshots.items():
                keys.append(_key(account_id))
                args += snap
                identity = identities.get(account_id)
                args += (*identity[:4], identity.created_at.isoformat()) if identity else ("",) * 5
            try:
                # By digest: neither the script's text nor Redis re-hashing it on every movement.
                client.evalsha(_STORE_SHA, len(keys), *keys, *args)
            except NoScriptError:  # a restarted or flushed Redis: EVAL loads it again
                client.eval(_STORE_LUA, len(keys), *keys, *args)
            return
        with _local_lock:
            for account_id, snap in snapshots.items():
                state, identity = cache.get(_key(account_id)) or (None, None)
                if state is None or state[2] < snap.version:
                    state = tuple(snap)
                identity = identities.get(account_id, identity)
                cache.set(_key(account_id), (state, identity and tuple(identity)), TTL_SECONDS)
    except cache_errors() as exc:
        logger.warning("balance cache store failed: %s", exc)
        _forget(snapshots)


def _forget(snapshots: dict) -> None:
    """After a failed store, drop the entries so readers go to the database.

    If the drop fails too (the cache is unreachable from here, perhaps only for
    a moment), the entries still hold the state before this change and must
    not be served: this process stops reading them and keeps retrying the drop
    in the background (``_stale``).
    """
    try:
        _drop(list(snapshots))
    except cache_errors() as exc:
        logger.warning("balance cache invalidation failed too (%s); retrying in the background", exc)
        _stale.add(snapshots)


def _drop(account_ids: list) -> None:
    keys = [_key(account_id) for account_id in account_ids]
    if _uses_redis():
        from django_redis import get_redis_connection

        get_redis_connection("default").delete(*keys)  # raw keys, like the Lua store
    else:
        cache.delete_many(keys)


class _StaleEntries:
    """Entries this process changed but could neither update nor drop in the cache.

    Not served by this process, and dropped by a daemon thread that retries
    every ``RETRY_SECONDS`` until the cache answers (or the entry has expired by
    itself, ``TTL_SECONDS`` after it was last stored). Other processes may
    serve such an entry until that drop: about ``RETRY_SECONDS`` after the
    cache is reachable again, or up to ``TTL_SECONDS`` if this process dies
    first (README, "Account cache").
    """

    RETRY_SECONDS = 0.5

    def __init__(self):
        self._until: dict = {}  # account id -> when the entry expires by itself (monotonic)
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def __contains__(self, account_id) -> bool:
        return account_id in self._until

    def add(self, account_ids: Iterable) -> None:
        expires = time.monotonic() + TTL_SECONDS
        with self._guard:
            for account_id in account_ids:
                self._until[account_id] = expires
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="cache-invalidator", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.RETRY_SECONDS)
            with self._guard:
                now = time.monotonic()
                for account_id in [key for key, until in self._until.items() if until <= now]:
                    del self._until[account_id]
                pending = dict(self._until)
                if not pending:
                    self._thread = None
                    return
            try:
                _drop(list(pending))
            except cache_errors():
                continue
            with self._guard:
                for account_id, until in pending.items():
                    if self._until.get(account_id) == until:  # not failed again meanwhile
                        del self._until[account_id]


_stale = _StaleEntries()


def _fetch(account_ids: list) -> dict:
    """{account_id: (Snapshot, Identity or None)} for the ids whose state is cached; {} when the cache is down."""
    account_ids = [account_id for account_id in account_ids if account_id not in _stale]
    if not account_ids:
        return {}
    try:
        if _uses_redis():
            from django_redis import get_redis_connection

            pipe = get_redis_connection("default").pipeline(transaction=False)
            for account_id in account_ids:
                pipe.hmget(_key(account_id), *_FIELDS)
            found = {}
            for account_id, values in zip(account_ids, pipe.execute()):
                posted, pending, version, status, name, kind, owner, number, currency, created = values
                if None in (posted, pending, version, status, name):
                    continue
                state = Snapshot(int(posted), int(pending), int(version), status.decode(), name.decode())
                identity = None
                if None not in (kind, owner, number, currency, created):
                    identity = Identity(
                        kind.decode(), owner.decode(), number.decode(), currency.decode(),
                        datetime.fromisoformat(created.decode()),
                    )
                found[account_id] = (state, identity)
            return found
        found = {}
        for account_id in account_ids:
            state, identity = cache.get(_key(account_id)) or (None, None)
            if state is not None:
                found[account_id] = (Snapshot(*state), identity and Identity(*identity))
        return found
    except cache_errors() as exc:
        logger.warning("balance cache fetch failed: %s", exc)
        return {}


def _fetch_counted(account_ids: list) -> dict:
    found = _fetch(account_ids)
    metrics.account_cache_counted(hits=len(found), misses=len(account_ids) - len(found))
    return found


def balance_cache_fetch(account_ids: Iterable) -> dict:
    """{account_id: Snapshot} for the ids found in the cache; {} when the cache is down."""
    return {account_id: state for account_id, (state, _identity) in _fetch_counted(list(account_ids)).items()}


def account_cache_fetch(account_id) -> tuple[Snapshot, Identity] | None:
    """The account's cached state and identity, or None (not cached, only the state cached, or the cache down)."""
    state, identity = _fetch_counted([account_id]).get(account_id, (None, None))
    return (state, identity) if identity is not None else None
