"""Faults: Redis dies mid-run; the database connection of a transfer is killed mid-flight."""

import threading
import time

import pytest
from django.db import OperationalError, connection, connections

from ledger.balance_cache import balance_cache_fetch
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.selectors import account_balances
from transactions.models import IdempotencyRecord, Transaction
from transactions.services import transfer_create
from transactions.tests.concurrency import RowLockHeld, backend_waiting_on_lock
from transactions.tests.helpers import PIN, funded_account
from transactions.verification import books_verify

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _balances(*accounts):
    return [LedgerAccount.objects.get(pk=account.pk).posted for account in accounts]


def test_redis_stopped_mid_run(private_redis):
    from django.core.cache import cache

    source = funded_account(amount=10_000)
    destination = funded_account(amount=0)

    def send(key, amount=100):
        return transfer_create(
            actor=source.owner, source=source, destination=destination, amount=amount, pin=PIN, idempotency_key=key
        )

    for index in range(5):
        send(f"before-{index}")
    assert account_balances(account_ids=[source.pk])[source.pk].posted == 9_500
    assert cache.get("probe") is None  # Redis answers
    assert balance_cache_fetch([source.pk])[source.pk].posted == 9_500  # and holds the balance

    private_redis.kill()
    private_redis.wait(5)

    assert balance_cache_fetch([source.pk]) == {}  # the cache is gone
    for index in range(5):
        send(f"after-{index}")
    replay = send("before-0")  # recorded while Redis was up
    assert replay.replayed is True
    again = send("after-0")  # recorded while Redis was down
    assert again.replayed is True
    assert _balances(source, destination) == [9_000, 1_000]
    # Reads fall back to the database.
    snapshot = account_balances(account_ids=[source.pk, destination.pk])
    assert (snapshot[source.pk].posted, snapshot[destination.pk].posted) == (9_000, 1_000)
    assert Transaction.objects.filter(type="transfer").count() == 10
    assert [result.name for result in books_verify() if not result.ok] == []


def test_connection_killed_mid_transfer_leaves_nothing_and_retry_completes_once():
    source = funded_account(amount=1_000)
    destination = funded_account(amount=0)
    counts = (JournalEntry.objects.count(), Posting.objects.count(), Transaction.objects.count())
    outcome = {}

    def worker():
        try:
            outcome["result"] = transfer_create(
                actor=source.owner, source=source, destination=destination, amount=400, pin=PIN, idempotency_key="kill"
            )
        except BaseException as exc:
            outcome["result"] = exc
        finally:
            connections.close_all()

    # The transfer claims its key and locks what it can, then waits for the
    # destination's row: its connection is killed there, mid-statement.
    with RowLockHeld(destination.pk):
        thread = threading.Thread(target=worker)
        thread.start()
        pid = backend_waiting_on_lock("ledgerx_movement_create")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        thread.join(20)
    assert isinstance(outcome["result"], OperationalError)
    assert (JournalEntry.objects.count(), Posting.objects.count(), Transaction.objects.count()) == counts
    assert _balances(source, destination) == [1_000, 0]
    assert not IdempotencyRecord.objects.filter(key="kill").exists()

    first = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=400, pin=PIN, idempotency_key="kill"
    )
    second = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=400, pin=PIN, idempotency_key="kill"
    )
    assert (first.replayed, second.replayed) == (False, True)
    assert _balances(source, destination) == [600, 400]
    assert Transaction.objects.filter(type="transfer").count() == 1
    assert [result.name for result in books_verify() if not result.ok] == []
