"""Races on real PostgreSQL: row locks, lock order and the idempotency guards."""

from collections import Counter
from unittest import mock

import pytest

from ledger.exceptions import InsufficientFunds
from ledger.models import LedgerAccount
from transactions import idempotency
from transactions.exceptions import IdempotencyInProgress
from transactions.models import IdempotencyRecord, Transaction
from transactions.services.money import deposit_create, transfer_create
from transactions.tests.concurrency import run_parallel
from transactions.tests.helpers import PIN, funded_account, needs_direct_session, new_key
from transactions.verification import books_verify

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _posted(account) -> int:
    return LedgerAccount.objects.get(pk=account.pk).posted


def _assert_books_clean():
    assert [result.name for result in books_verify() if not result.ok] == []


def test_parallel_overdraft_only_affordable_transfers_succeed():
    source = funded_account(amount=500)
    destination = funded_account(amount=0)

    def send():
        return transfer_create(
            actor=source.owner, source=source, destination=destination, amount=100, pin=PIN, idempotency_key=new_key()
        )

    results = run_parallel([send] * 10)
    kinds = Counter(type(result).__name__ for result in results)
    assert kinds == Counter({"MoneyOutcome": 5, "InsufficientFunds": 5})
    assert all(isinstance(r, InsufficientFunds) for r in results if not hasattr(r, "transaction"))
    assert (_posted(source), _posted(destination)) == (0, 500)
    assert Transaction.objects.filter(type="transfer").count() == 5
    _assert_books_clean()


def test_parallel_holds_cannot_over_reserve():
    source = funded_account(amount=300)
    destination = funded_account(amount=0)

    def hold():
        return transfer_create(
            actor=source.owner, source=source, destination=destination, amount=100, pin=PIN, idempotency_key=new_key(), hold=True
        )

    results = run_parallel([hold] * 6)
    assert sum(1 for r in results if isinstance(r, InsufficientFunds)) == 3
    source.refresh_from_db()
    assert (source.posted, source.pending) == (300, 300)
    _assert_books_clean()


def test_crossing_transfers_do_not_deadlock_and_conserve_money():
    a = funded_account(amount=10_000)
    b = funded_account(amount=10_000)

    def a_to_b():
        return transfer_create(actor=a.owner, source=a, destination=b, amount=7, pin=PIN, idempotency_key=new_key())

    def b_to_a():
        return transfer_create(actor=b.owner, source=b, destination=a, amount=5, pin=PIN, idempotency_key=new_key())

    results = run_parallel([a_to_b, b_to_a] * 8)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (_posted(a), _posted(b)) == (10_000 - 8 * 7 + 8 * 5, 10_000 + 8 * 7 - 8 * 5)
    _assert_books_clean()


def test_same_key_in_parallel_moves_money_once():
    account = funded_account(amount=0)

    def deposit():
        return deposit_create(actor=account.owner, account=account, amount=250, idempotency_key="same")

    results = run_parallel([deposit] * 8)
    made = [r for r in results if hasattr(r, "replayed") and not r.replayed]
    others = [r for r in results if r not in made]
    assert len(made) == 1
    assert all(isinstance(r, IdempotencyInProgress) or (hasattr(r, "replayed") and r.replayed) for r in others)
    assert _posted(account) == 250
    assert IdempotencyRecord.objects.filter(key="same").count() == 1
    _assert_books_clean()


def test_same_key_in_parallel_without_in_flight_guard_uses_the_database_guard():
    """No in-flight guard (the cache marker with Redis down): the unique key decides; losers replay."""
    account = funded_account(amount=1000)
    destination = funded_account(amount=0)

    def send():
        return transfer_create(
            actor=account.owner, source=account, destination=destination, amount=100, pin=PIN, idempotency_key="k"
        )

    class NoGuard(idempotency._InFlightGuard):
        """An in-flight guard that stops nothing (as the cache marker when Redis is down)."""

        def claim(self):
            pass

        def claim_and_probe(self, *, user, endpoint, key):
            return idempotency._record_seen(user=user, endpoint=endpoint, key=key)

    with mock.patch.object(idempotency, "_in_flight_guard", return_value=NoGuard()):
        results = run_parallel([send] * 8)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sorted(r.replayed for r in results) == [False] + [True] * 7
    assert len({r.transaction.pk for r in results}) == 1
    assert (_posted(account), _posted(destination)) == (900, 100)
    _assert_books_clean()


def _function_source() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'ledgerx_movement_create'")
        return cursor.fetchone()[0]


def test_the_movement_function_locks_with_one_ordered_select_for_update():
    """One SELECT ... FOR UPDATE in primary-key order (as accounts_lock), after the actor's row FOR SHARE."""
    source = _function_source()
    assert source.count("FOR UPDATE") == 1
    lock = source[source.index("FROM ledger_ledgeraccount a") : source.index("FOR UPDATE")]
    assert "ORDER BY a.id" in lock
    share = source.index("FROM accounts_user u WHERE u.id = p_actor FOR SHARE")
    assert share < source.index("FOR UPDATE")


def test_a_hold_commit_locks_its_accounts_with_one_ordered_select_for_update():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from transactions.services.holds import hold_commit

    source = funded_account(amount=100)
    destination = funded_account(amount=0)
    hold = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=1, pin=PIN, idempotency_key="q", hold=True
    ).transaction
    with CaptureQueriesContext(connection) as queries:
        hold_commit(actor=source.owner, transaction=hold)
    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"] and "ledger_ledgeraccount" in q["sql"]]
    assert len(locks) == 1
    assert 'ORDER BY "ledger_ledgeraccount"."id" ASC' in locks[0]
    # The actor's suspension check rides in the same statement, under FOR SHARE.
    assert 'FROM "accounts_user" WHERE "id" = ' in locks[0] and "FOR SHARE" in locks[0]
    assert 'FOR UPDATE OF "ledger_ledgeraccount"' in locks[0]


def test_a_suspension_waits_for_a_running_transfer_and_then_stops_the_next():
    """The FOR SHARE on the user row orders a concurrent suspension after the transfer."""
    import threading

    from django.db import connections

    from accounts.exceptions import UserSuspended
    from accounts.models import User
    from accounts.services import user_suspend
    from accounts.tests.factories import AdminFactory
    from transactions.tests.concurrency import RowLockHeld, backend_waiting_on_lock

    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    admin = AdminFactory()
    suspended = threading.Event()
    results = []

    def send():
        try:
            results.append(
                transfer_create(
                    actor=source.owner, source=source, destination=destination, amount=100, pin=PIN, idempotency_key="s"
                )
            )
        finally:
            connections.close_all()

    def suspend():
        try:
            user_suspend(actor=admin, user=User.objects.get(pk=source.owner.pk), reason="fraud")
            suspended.set()
        finally:
            connections.close_all()

    with RowLockHeld(destination.pk) as blocker:
        worker = threading.Thread(target=send)
        worker.start()
        # The transfer has the user row FOR SHARE and waits for the destination's lock.
        backend_waiting_on_lock("ledgerx_movement_create")
        suspender = threading.Thread(target=suspend)
        suspender.start()
        assert not suspended.wait(1), "the suspension must wait for the transfer holding FOR SHARE"
        blocker.release()
        worker.join(10)
        suspender.join(10)
    assert suspended.is_set() and len(results) == 1
    assert _posted(source) == 900
    with pytest.raises(UserSuspended):
        transfer_create(actor=source.owner, source=source, destination=destination, amount=1, pin=PIN, idempotency_key="t")


@needs_direct_session
def test_a_transfer_is_one_statement_after_the_key_lookup():
    """The fast path: key guard + probe, PIN check, then ONE call that writes every row of the movement."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit.models import AuditAction, AuditRecord, AuditSeal

    source = funded_account(amount=100)
    destination = funded_account(amount=0)
    with CaptureQueriesContext(connection) as queries:
        outcome = transfer_create(
            actor=source.owner, source=source, destination=destination, amount=1, pin=PIN, idempotency_key="one-trip"
        )
    sqls = [q["sql"] for q in queries.captured_queries]
    # One statement takes the key's in-flight lock and probes for a replay.
    probe = next(i for i, sql in enumerate(sqls) if sql.startswith("SELECT pg_try_advisory_lock("))
    assert 'SELECT 1 FROM "transactions_idempotencyrecord"' in sqls[probe]
    calls = [i for i, sql in enumerate(sqls) if "ledgerx_movement_create" in sql]
    assert len(calls) == 1 and probe < calls[0]
    money_tables = ('"ledger_', '"transactions_transaction"', "INSERT INTO \"transactions_idempotencyrecord")
    assert [sql for sql in sqls if any(table in sql for table in money_tables)] == []
    record = IdempotencyRecord.objects.get(key="one-trip")
    assert (record.transaction_id, record.fingerprint != "", record.response_body) == (
        outcome.transaction.pk,
        True,
        outcome.body,
    )
    txn = Transaction.objects.get(pk=outcome.transaction.pk)
    assert txn.entry_id == outcome.transaction.entry_id is not None
    assert sorted(txn.entry.postings.values_list("amount", "balance_after")) == [(-1, 99), (1, 1)]
    audit = AuditRecord.objects.get(target_id=str(outcome.transaction.pk))
    assert (audit.action, audit.data) == (AuditAction.TRANSFER_CREATED, outcome.body)
    assert AuditSeal.objects.filter(record=audit).exists()  # sealed after commit (inline in tests)


@needs_direct_session
def test_the_key_probe_and_the_movement_call_are_prepared_once_per_connection(settings):
    """Both money-path statements run as prepared statements: parsed and planned once, then reused."""
    from django.db import connection

    settings.PIN_CACHE_SECONDS = 0  # a PIN proven from the cache would skip the probe

    source = funded_account(amount=100)
    destination = funded_account(amount=0)

    def executions() -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
            rows = cursor.fetchall()
        return {
            kind: sum(count for statement, count in rows if marker in statement)
            for kind, marker in (("probe", "pg_try_advisory_lock($1::bigint)"), ("call", "ledgerx_movement_create(p_lock_key => $1::bigint"))
        }

    before = executions()
    for index in range(2):
        transfer_create(
            actor=source.owner, source=source, destination=destination, amount=1, pin=PIN, idempotency_key=f"p-{index}"
        )
    after = executions()
    assert {kind: after[kind] - before[kind] for kind in after} == {"probe": 2, "call": 2}
