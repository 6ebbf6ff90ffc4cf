"""The balance cache never goes backwards and degrades to the database.

Runs against whichever cache the suite is configured with: the in-process
cache on SQLite runs, Redis (Lua compare-and-set) when REDIS_URL is set.
"""

import uuid
from unittest import mock

import pytest

from ledger import balance_cache
from ledger.balance_cache import Snapshot, balance_cache_fetch, balance_cache_store
from ledger.selectors import account_balances
from ledger.tests.factories import customer_account


def test_newer_version_wins_whatever_the_order():
    account_id = uuid.uuid4()
    balance_cache_store({account_id: Snapshot(500, 0, 7)})
    balance_cache_store({account_id: Snapshot(400, 0, 6)})  # a late, older writer
    assert balance_cache_fetch([account_id]) == {account_id: Snapshot(500, 0, 7)}
    balance_cache_store({account_id: Snapshot(300, 100, 8)})
    assert balance_cache_fetch([account_id]) == {account_id: Snapshot(300, 100, 8)}


def test_missing_ids_are_absent():
    present, absent = uuid.uuid4(), uuid.uuid4()
    balance_cache_store({present: Snapshot(1, 0, 1)})
    assert balance_cache_fetch([present, absent]) == {present: Snapshot(1, 0, 1)}


@pytest.mark.django_db
def test_reads_fill_the_cache_from_the_database():
    account = customer_account()
    assert balance_cache_fetch([account.pk]) == {}
    assert account_balances(account_ids=[account.pk]) == {account.pk: Snapshot(0, 0, 0)}
    assert balance_cache_fetch([account.pk]) == {account.pk: Snapshot(0, 0, 0)}


@pytest.mark.django_db
def test_cache_errors_fall_back_to_the_database():
    from redis.exceptions import ConnectionError as RedisConnectionError

    account = customer_account()
    broken = mock.patch.object(balance_cache, "_uses_redis", side_effect=RedisConnectionError("down"))
    with broken:
        assert balance_cache_fetch([account.pk]) == {}
        balance_cache_store({account.pk: Snapshot(9, 9, 9)})  # logged and skipped, never raised
        assert account_balances(account_ids=[account.pk]) == {account.pk: Snapshot(0, 0, 0)}


def test_a_failed_store_drops_the_old_entry():
    """If storing a newer balance fails but the cache still answers, readers must not keep the old one."""
    from django.core.cache import caches
    from redis.exceptions import TimeoutError as RedisTimeout

    account_id = uuid.uuid4()
    balance_cache_store({account_id: Snapshot(500, 0, 1)})
    if balance_cache._uses_redis():
        from django_redis import get_redis_connection

        target = mock.patch.object(type(get_redis_connection("default")), "evalsha", side_effect=RedisTimeout("slow"))
    else:
        target = mock.patch.object(type(caches["default"]), "set", side_effect=RedisTimeout("slow"))
    with target:
        balance_cache_store({account_id: Snapshot(400, 0, 2)})
    assert balance_cache_fetch([account_id]) == {}


@pytest.mark.redis
def test_a_restarted_redis_without_the_script_still_gets_the_store(private_redis):
    """The store runs the script by digest; a Redis that lost its scripts gets it by text again."""
    from django_redis import get_redis_connection

    account_id = uuid.uuid4()
    get_redis_connection("default").script_flush()
    balance_cache_store({account_id: Snapshot(7, 0, 1)})
    assert balance_cache_fetch([account_id]) == {account_id: Snapshot(7, 0, 1)}
    balance_cache_store({account_id: Snapshot(8, 0, 2)})  # and by digest from then on
    assert balance_cache_fetch([account_id]) == {account_id: Snapshot(8, 0, 2)}
