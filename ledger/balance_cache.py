"""Balance cache: fast account reads that are never older than a committed change.

Each entry holds (posted, pending, version). Writers store the balances they
just wrote from ``transaction.on_commit``, i.e. before their HTTP response is
sent; readers that miss load from the database and store what they read. Every
store is *version-guarded* (compare-and-set: only a higher version replaces the
entry), so two commits whose callbacks run in the opposite order, or a slow
reader storing an old row, can never push the cache backwards. Hence a client
that received a response for change N reads a version >= N.

With Redis configured the guard is a Lua script (atomic across workers); with
the in-process cache it is a process lock. Any cache failure degrades to the
database: reads answer from PostgreSQL, writes skip the cache.
"""

import hashlib
import logging
import threading
from collections.abc import Iterable
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import NoScriptError

logger = logging.getLogger("ledgerx.ledger.cache")

TTL_SECONDS = 300
_local_lock = threading.Lock()

_STORE_LUA = """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 3
  local version = tonumber(ARGV[base + 3])
  local current = redis.call('HGET', key, 'v')
  if (not current) or tonumber(current) < version then
    redis.call('HSET', key, 'p', ARGV[base + 1], 'q', ARGV[base + 2], 'v', ARGV[base + 3])
  end
  redis.call('EXPIRE', key, ttl)
end
return 1
"""


_STORE_SHA = hashlib.sha1(_STORE_LUA.encode()).hexdigest()


class Snapshot(NamedTuple):
    posted: int
    pending: int
    version: int


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
    return f"ledgerx:balance:{account_id}"


def balance_cache_store(snapshots: dict) -> None:
    """Store {account_id: Snapshot}, keeping whichever version is newer."""
    if not snapshots:
        return
    try:
        if _uses_redis():
            from django_redis import get_redis_connection

            client = get_redis_connection("default")
            keys, args = [], [TTL_SECONDS]
            for account_id, snap in snapshots.items():
                keys.append(_key(account_id))
                args += [snap.posted, snap.pending, snap.version]
            try:
                # By digest: neither the script's text nor Redis re-hashing it on every movement.
                client.evalsha(_STORE_SHA, len(keys), *keys, *args)
            except NoScriptError:  # a restarted or flushed Redis: EVAL loads it again
                client.eval(_STORE_LUA, len(keys), *keys, *args)
            return
        with _local_lock:
            for account_id, snap in snapshots.items():
                current = cache.get(_key(account_id))
                if current is None or current[2] < snap.version:
                    cache.set(_key(account_id), tuple(snap), TTL_SECONDS)
    except cache_errors() as exc:
        logger.warning("balance cache store failed: %s", exc)
        _forget(snapshots)


def _forget(snapshots: dict) -> None:
    """After a failed store, try to drop the entries so readers go to the database.

    (If the cache is down this fails too, and readers already use the database.)
    """
    keys = [_key(account_id) for account_id in snapshots]
    try:
        if _uses_redis():
            from django_redis import get_redis_connection

            get_redis_connection("default").delete(*keys)  # raw keys, like the Lua store
        else:
            cache.delete_many(keys)
    except cache_errors() as exc:
        logger.warning("balance cache invalidation failed too: %s", exc)


def balance_cache_fetch(account_ids: Iterable) -> dict:
    """{account_id: Snapshot} for the ids found in the cache; {} when the cache is down."""
    ids = list(account_ids)
    if not ids:
        return {}
    try:
        if _uses_redis():
            from django_redis import get_redis_connection

            client = get_redis_connection("default")
            pipe = client.pipeline(transaction=False)
            for account_id in ids:
                pipe.hmget(_key(account_id), "p", "q", "v")
            found = {}
            for account_id, values in zip(ids, pipe.execute()):
                if None not in values:
                    found[account_id] = Snapshot(*(int(value) for value in values))
            return found
        found = {}
        for account_id in ids:
            value = cache.get(_key(account_id))
            if value is not None:
                found[account_id] = Snapshot(*value)
        return found
    except cache_errors() as exc:
        logger.warning("balance cache fetch failed: %s", exc)
        return {}
