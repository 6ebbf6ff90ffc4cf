"""The account cache never goes backwards and degrades to the database.

Runs against whichever cache the suite is configured with: the in-process
cache on SQLite runs, Redis (Lua compare-and-set) when REDIS_URL is set.
"""

import uuid
from datetime import UTC, datetime
from unittest import mock

import pytest

from ledger import balance_cache
from ledger.balance_cache import Identity, Snapshot, account_cache_fetch, balance_cache_fetch, balance_cache_store
from ledger.selectors import account_view_for_user
from ledger.tests.factories import customer_account


def test_newer_version_wins_whatever_the_order():
    account_id = uuid.uuid4()
    balance_cache_store({account_id: Snapshot(500, 0, 7, "active", "")})
    balance_cache_store({account_id: Snapshot(400, 0, 6, "active", "")})  # a late, older writer
    assert balance_cache_fetch([account_id]) == {account_id: Snapshot(500, 0, 7, "active", "")}
    balance_cache_store({account_id: Snapshot(300, 100, 8, "active", "")})
    assert balance_cache_fetch([account_id]) == {account_id: Snapshot(300, 100, 8, "active", "")}


def test_missing_ids_are_absent():
    present, absent = uuid.uuid4(), uuid.uuid4()
    balance_cache_store({present: Snapshot(1, 0, 1, "active", "")})
    assert balance_cache_fetch([present, absent]) == {present: Snapshot(1, 0, 1, "active", "")}


def test_status_and_name_follow_the_version_too():
    """A freeze stored late (older version) cannot undo an unfreeze or a rename stored before it."""
    account_id = uuid.uuid4()
    balance_cache_store({account_id: Snapshot(500, 0, 9, "active", "Rent")})  # unfreeze, then a rename
    balance_cache_store({account_id: Snapshot(500, 0, 8, "frozen", "")})  # the freeze's callback, late
    assert balance_cache_fetch([account_id]) == {account_id: Snapshot(500, 0, 9, "active", "Rent")}


def test_an_entry_answers_the_account_endpoint_only_once_a_reader_stored_its_identity():
    """Movements store only the state; the owner check needs the identity a reader stores from the row."""
    account_id = uuid.uuid4()
    balance_cache_store({account_id: Snapshot(1, 0, 3, "active", "")})
    assert account_cache_fetch(account_id) is None
    identity = Identity("customer", str(uuid.uuid4()), "12345678901", "NGN", datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    balance_cache_store({account_id: Snapshot(1, 0, 2, "active", "")}, {account_id: identity})  # an older row
    assert account_cache_fetch(account_id) == (Snapshot(1, 0, 3, "active", ""), identity)


@pytest.mark.django_db
def test_reads_fill_the_cache_from_the_database():
    account = customer_account(name="Ünïcode savings")
    assert account_cache_fetch(account.pk) is None
    assert account_view_for_user(user=account.owner, account_id=account.pk) == (
        Snapshot(0, 0, 0, "active", "Ünïcode savings"), Identity.of(account)
    )
    assert account_cache_fetch(account.pk) == (Snapshot(0, 0, 0, "active", "Ünïcode savings"), Identity.of(account))


@pytest.mark.django_db
def test_cache_errors_fall_back_to_the_database():
    from redis.exceptions import ConnectionError as RedisConnectionError

    account = customer_account()
    broken = mock.patch.object(balance_cache, "_uses_redis", side_effect=RedisConnectionError("down"))
    with broken:
        assert balance_cache_fetch([account.pk]) == {}
        balance_cache_store({account.pk: Snapshot(9, 9, 9, "active", "")})  # logged and skipped, never raised
        assert account_view_for_user(user=account.owner, account_id=account.pk)[0] == Snapshot(0, 0, 0, "active", "")


def _store_fails():
    """The next stores time out (the Lua script on Redis, ``set`` on the in-process cache)."""
    from django.core.cache import caches
    from redis.exceptions import TimeoutError as RedisTimeout

    if balance_cache._uses_redis():
        from django_redis import get_redis_connection

        return mock.patch.object(type(get_redis_connection("default")), "evalsha", side_effect=RedisTimeout("slow"))
    return mock.patch.object(type(caches["default"]), "set", side_effect=RedisTimeout("slow"))


def test_a_failed_store_drops_the_old_entry():
    """If storing a newer balance fails but the cache still answers, readers must not keep the old one."""
    account_id = uuid.uuid4()
    balance_cache_store({account_id: Snapshot(500, 0, 1, "active", "")})
    with _store_fails():
        balance_cache_store({account_id: Snapshot(400, 0, 2, "active", "")})
    assert balance_cache_fetch([account_id]) == {}


@pytest.mark.redis
def test_a_restarted_redis_without_the_script_still_gets_the_store(private_redis):
    """The store runs the script by digest; a Redis that lost its scripts gets it by text again."""
    from django_redis import get_redis_connection

    account_id = uuid.uuid4()
    get_redis_connection("default").script_flush()
    balance_cache_store({account_id: Snapshot(7, 0, 1, "active", "")})
    assert balance_cache_fetch([account_id]) == {account_id: Snapshot(7, 0, 1, "active", "")}
    balance_cache_store({account_id: Snapshot(8, 0, 2, "active", "")})  # and by digest from then on
    assert balance_cache_fetch([account_id]) == {account_id: Snapshot(8, 0, 2, "active", "")}


def _peek_version(account_id):
    """The version stored under the account's key, read around this process's own bookkeeping."""
    if balance_cache._uses_redis():
        from django_redis import get_redis_connection

        version = get_redis_connection("default").hget(balance_cache._key(account_id), "v")
        return None if version is None else int(version)
    from django.core.cache import cache

    entry = cache.get(balance_cache._key(account_id))
    return None if entry is None else entry[0][2]


def test_an_entry_that_could_not_be_dropped_is_not_served_and_is_dropped_once_the_cache_answers(monkeypatch):
    """Store and drop both fail (the cache unreachable for a moment): the old state must not be read back."""
    import time

    from redis.exceptions import TimeoutError as RedisTimeout

    account_id = uuid.uuid4()
    balance_cache_store({account_id: Snapshot(100, 0, 1, "active", "")})
    monkeypatch.setattr(balance_cache._StaleEntries, "RETRY_SECONDS", 0.02)
    reachable = False
    real_drop = balance_cache._drop

    def drop(account_ids):
        if not reachable:
            raise RedisTimeout("unreachable")
        real_drop(account_ids)

    monkeypatch.setattr(balance_cache, "_drop", drop)
    with _store_fails():
        balance_cache_store({account_id: Snapshot(1000, 0, 2, "active", "")})
    assert _peek_version(account_id) == 1  # the old state is still in the cache ...
    assert balance_cache_fetch([account_id]) == {}  # ... and not served
    reachable = True
    deadline = time.monotonic() + 5
    while account_id in balance_cache._stale and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _peek_version(account_id) is None  # dropped for every process
    assert account_id not in balance_cache._stale
