"""Races on real PostgreSQL: row locks, lock order and the idempotency guards."""

from collections import Counter
from unittest import mock

import pytest

from ledger.exceptions import InsufficientFunds
from ledger.models import LedgerAccount
from transactions import idempotency
from transactions.exceptions import IdempotencyInProgress
from transactions.models import IdempotencyRecord, Transaction
from transactions.services import deposit_create, transfer_create
from transactions.tests.concurrency import run_parallel
from transactions.tests.helpers import PIN, funded_account, new_key
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


def test_same_key_in_parallel_without_cache_marker_uses_the_database_guard():
    """Redis empty/down: no in-flight marker, the unique constraint decides; losers replay."""
    account = funded_account(amount=1000)
    destination = funded_account(amount=0)

    def send():
        return transfer_create(
            actor=account.owner, source=account, destination=destination, amount=100, pin=PIN, idempotency_key="k"
        )

    # What _marker_claim returns when the cache is unreachable (module-level, so every thread sees it).
    with mock.patch.object(idempotency, "_marker_claim", return_value=None):
        results = run_parallel([send] * 8)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sorted(r.replayed for r in results) == [False] + [True] * 7
    assert len({r.transaction.pk for r in results}) == 1
    assert (_posted(account), _posted(destination)) == (900, 100)
    _assert_books_clean()


def test_a_transfer_locks_its_accounts_with_one_ordered_select_for_update():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    source = funded_account(amount=100)
    destination = funded_account(amount=0)
    with CaptureQueriesContext(connection) as queries:
        transfer_create(actor=source.owner, source=source, destination=destination, amount=1, pin=PIN, idempotency_key="q")
    locks = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"] and "ledger_ledgeraccount" in q["sql"]]
    assert len(locks) == 1
    assert 'ORDER BY "ledger_ledgeraccount"."id" ASC' in locks[0]
    # The actor's suspension check rides in the same statement, under FOR SHARE.
    assert 'FROM "accounts_user" WHERE "id" = ' in locks[0] and "FOR SHARE" in locks[0]
    assert 'FOR UPDATE OF "ledger_ledgeraccount"' in locks[0]
    assert sum(1 for q in queries.captured_queries if 'UPDATE "ledger_ledgeraccount"' in q["sql"]) == 1


def test_a_suspension_waits_for_a_running_transfer_and_then_stops_the_next():
    """The FOR SHARE on the user row orders a concurrent suspension after the transfer."""
    import threading

    from django.db import connection

    from accounts.exceptions import UserSuspended
    from accounts.models import User
    from accounts.tests.factories import AdminFactory
    from accounts.services import user_suspend
    from transactions import services

    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    admin = AdminFactory()
    locked, proceed, suspended = threading.Event(), threading.Event(), threading.Event()

    def pause(_accounts):
        locked.set()
        proceed.wait(10)

    def suspend():
        try:
            user_suspend(actor=admin, user=User.objects.get(pk=source.owner.pk), reason="fraud")
            suspended.set()
        finally:
            connection.close()

    results = []

    def send():
        try:
            results.append(
                transfer_create(
                    actor=source.owner, source=source, destination=destination, amount=100, pin=PIN, idempotency_key="s"
                )
            )
        finally:
            connection.close()

    services.after_lock_hook = pause
    try:
        worker = threading.Thread(target=send)
        worker.start()
        assert locked.wait(10)
        suspender = threading.Thread(target=suspend)
        suspender.start()
        assert not suspended.wait(1), "the suspension must wait for the transfer holding FOR SHARE"
        proceed.set()
        worker.join(10)
        suspender.join(10)
    finally:
        services.after_lock_hook = None
    assert suspended.is_set() and len(results) == 1
    assert _posted(source) == 900
    with pytest.raises(UserSuspended):
        transfer_create(actor=source.owner, source=source, destination=destination, amount=1, pin=PIN, idempotency_key="t")


def test_a_transfer_moves_money_in_four_statements_and_writes_its_rows_in_one():
    """The fast path: key probe, lock, entry, then transaction + key + audit rows in ONE statement."""
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
    # The key probe comes first; then the PIN check (its own transaction); then
    # the movement, whose lock, entry and write follow each other; the audit
    # sealer runs after commit.
    probe = next(i for i, sql in enumerate(sqls) if sql.startswith('SELECT 1 FROM "transactions_idempotencyrecord"'))
    locked = next(i for i, sql in enumerate(sqls) if 'FOR UPDATE OF "ledger_ledgeraccount"' in sql)
    assert probe < locked
    entry, write = sqls[locked + 1 : locked + 3]
    assert '"ledger_journalentry"' in entry and '"ledger_posting"' in entry
    assert all(
        table in write
        for table in (
            '"transactions_transaction"',
            '"transactions_idempotencyrecord"',
            '"audit_auditrecord"',
            '"audit_auditpending"',
        )
    )
    assert sum(1 for sql in sqls if '"transactions_transaction"' in sql) == 1
    record = IdempotencyRecord.objects.get(key="one-trip")
    assert (record.transaction_id, record.fingerprint != "", record.response_body) == (
        outcome.transaction.pk,
        True,
        outcome.body,
    )
    audit = AuditRecord.objects.get(target_id=str(outcome.transaction.pk))
    assert (audit.action, audit.data) == (AuditAction.TRANSFER_CREATED, outcome.body)
    assert AuditSeal.objects.filter(record=audit).exists()  # sealed after commit (inline in tests)
    assert (_posted(source), _posted(destination)) == (99, 1)
    _assert_books_clean()
