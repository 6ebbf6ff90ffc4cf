"""Faults: Redis dies mid-run; the database connection of a transfer is killed mid-flight."""

import threading
import time

import pytest
from django.db import OperationalError, connection, connections

from ledger.balance_cache import balance_cache_fetch
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.selectors import account_view_for_user
from transactions.models import IdempotencyRecord, Transaction
from transactions.services.money import transfer_create
from transactions.tests.concurrency import RowLockHeld, backend_waiting_on_lock
from transactions.tests.helpers import PIN, funded_account, needs_direct_session
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
    assert account_view_for_user(user=source.owner, account_id=source.pk)[0].posted == 9_500
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
    views = [account_view_for_user(user=account.owner, account_id=account.pk) for account in (source, destination)]
    assert [state.posted for state, _identity in views] == [9_000, 1_000]
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


@needs_direct_session
def test_a_busy_key_is_free_again_once_the_holding_connection_dies():
    """The in-flight guard is an advisory lock: a worker that died cannot keep a key at 409."""
    from transactions.exceptions import IdempotencyInProgress
    from transactions.idempotency import _in_flight_guard
    from transactions.services.money import deposit_create

    account = funded_account(amount=0)
    guard = _in_flight_guard(account.owner, "deposits", "orphaned")
    held, finished, pid = threading.Event(), threading.Event(), {}

    def dying_worker():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid(), pg_advisory_lock(%s)", [guard.lock_key])
                pid["value"] = cursor.fetchone()[0]
            held.set()
            finished.wait(20)  # "hangs" until the test is over: only the kill can free the key
        finally:
            connections.close_all()

    worker = threading.Thread(target=dying_worker)
    worker.start()
    assert held.wait(10)
    with pytest.raises(IdempotencyInProgress):
        deposit_create(actor=account.owner, account=account, amount=5, idempotency_key="orphaned")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid["value"]])
    deadline = time.monotonic() + 5
    while True:  # the backend exits asynchronously
        try:
            outcome = deposit_create(actor=account.owner, account=account, amount=5, idempotency_key="orphaned")
            break
        except IdempotencyInProgress:
            assert time.monotonic() < deadline, "the dead connection's lock was never released"
            time.sleep(0.05)
    finished.set()
    worker.join(10)
    assert outcome.replayed is False and _balances(account) == [5]


@needs_direct_session
def test_connections_ask_postgresql_to_notice_a_vanished_client_within_a_minute():
    """Keepalives on the server side end a dead host's sessions, and with them its in-flight locks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT inet_client_addr() IS NULL")
        if cursor.fetchone()[0]:
            pytest.skip("a Unix-socket connection has no TCP keepalives")
        cursor.execute("SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'), current_setting('tcp_keepalives_count')")
        idle, interval, count = (int(value) for value in cursor.fetchone())
    assert idle + interval * count <= 60
