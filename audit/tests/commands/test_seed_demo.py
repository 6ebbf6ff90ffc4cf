import io

import pytest
from django.core.management import call_command

from accounts.models import User
from audit.services.verification import audit_chain_verify
from ledger.models import LedgerAccount, Posting
from transactions.models import Transaction
from transactions.verification import books_verify

pytestmark = pytest.mark.django_db


def _state() -> dict:
    return {
        "users": User.objects.count(),
        "accounts": LedgerAccount.objects.count(),
        "postings": Posting.objects.count(),
        "transactions": sorted(Transaction.objects.values_list("pk", "status")),
    }


def test_seed_demo_through_the_services_is_idempotent_and_consistent():
    out = io.StringIO()
    call_command("seed_demo", "--users", "3", "--transactions", "120", stdout=out)
    text = out.getvalue()
    assert "admin@ledgerx.local / admin-password-2026" in text
    assert "demo@ledgerx.local / demo-password-2026  PIN 4826" in text
    customers = User.objects.filter(email__in=["demo@ledgerx.local", "customer001@ledgerx.local",
                                               "customer002@ledgerx.local", "customer003@ledgerx.local"])
    assert customers.count() == 4
    for user in customers:
        assert sorted(LedgerAccount.objects.filter(owner=user).values_list("currency", flat=True)) == ["EUR", "GBP", "NGN", "USD"]
    kinds = set(Transaction.objects.values_list("type", "status").distinct())
    for kind in [("deposit", "committed"), ("withdrawal", "committed"), ("transfer", "committed"),
                 ("transfer", "pending"), ("transfer", "voided"), ("transfer", "reversed"), ("reversal", "committed"),
                 ("conversion", "committed")]:
        assert kind in kinds, kind
    assert all(result.ok for result in books_verify())
    assert audit_chain_verify().ok

    before = _state()
    call_command("seed_demo", "--users", "3", "--transactions", "120", stdout=io.StringIO())
    assert _state() == before


def test_seed_demo_bulk_path_keeps_the_books_and_chain_valid_and_resumes():
    args = ["--users", "30", "--transactions", "400", "--bulk-threshold", "10", "--batch", "150"]
    call_command("seed_demo", *args, stdout=io.StringIO())
    assert Transaction.objects.filter(metadata__seed="bulk").count() == 400
    assert User.objects.filter(email__startswith="bulk").count() == 30 - 12
    failures = [result for result in books_verify() if not result.ok]
    assert failures == []
    report = audit_chain_verify()
    assert (report.ok, report.unsealed) == (True, 0)
    before = _state()
    call_command("seed_demo", *args, stdout=io.StringIO())
    assert _state() == before


def test_seed_demo_bulk_rerun_leaves_frozen_accounts_and_suspended_users_alone():
    from accounts.services import user_suspend
    from accounts.tests.factories import AdminFactory
    from ledger.services.customer_accounts import account_freeze

    args = ["--users", "30", "--bulk-threshold", "10", "--batch", "150"]
    call_command("seed_demo", *args, "--transactions", "400", stdout=io.StringIO())
    admin = AdminFactory()
    bulk = list(LedgerAccount.objects.filter(owner__email__startswith="bulk").order_by("number"))
    frozen, suspended = bulk[:3], bulk[3:5]
    for account in frozen:
        account_freeze(actor=admin, account=account, reason="test")
    for account in suspended:
        user_suspend(actor=admin, user=account.owner, reason="test")
    untouched = [account.pk for account in frozen + suspended]
    before = Posting.objects.filter(account_id__in=untouched).count()
    call_command("seed_demo", *args, "--transactions", "1200", stdout=io.StringIO())
    assert Transaction.objects.filter(metadata__seed="bulk").count() == 1200
    assert Posting.objects.filter(account_id__in=untouched).count() == before
    assert [result for result in books_verify() if not result.ok] == []


def test_seed_demo_moves_money_through_the_batch_engine_and_replays_its_batches():
    from transactions.models import Batch

    call_command("seed_demo", "--users", "3", "--transactions", "300", stdout=io.StringIO())
    movements = Transaction.objects.filter(type__in=("deposit", "withdrawal", "transfer"))
    assert movements.count() == 300
    assert not movements.filter(batch__isnull=True).exists()
    assert Batch.objects.count() == 4  # one per customer (each has fewer than 1000 movements)
    call_command("seed_demo", "--users", "3", "--transactions", "300", stdout=io.StringIO())
    assert (Batch.objects.count(), movements.count()) == (4, 300)


def test_seed_demo_passwords_are_cheap_until_the_first_login_rehashes_them(settings):
    from accounts.services import auth_login

    call_command("seed_demo", "--users", "1", "--transactions", "20", stdout=io.StringIO())
    customer = User.objects.get(email="customer001@ledgerx.local")
    assert customer.password.startswith("bcrypt_sha256$$2b$04$")
    settings.PASSWORD_HASHERS = ["accounts.hashers.BCryptSHA256Cost12PasswordHasher"]
    auth_login(email=customer.email, password="demo-password-2026")
    customer.refresh_from_db()
    assert customer.password.startswith("bcrypt_sha256$$2b$12$")


def test_seed_demo_with_its_defaults_writes_its_movements_in_batches_not_one_by_one():
    """What keeps the defaults fast (seconds, not minutes), counted rather than timed: the
    movements go through the batch engine, so the statements writing transactions are a
    small fraction of the movements (one by one, there would be one per movement)."""
    from django.db import connection

    writes = []

    def count_transaction_writes(execute, sql, params, many, context):
        if 'INSERT INTO "transactions_transaction"' in sql:
            writes.append(sql)
        return execute(sql, params, many, context)

    out = io.StringIO()
    with connection.execute_wrapper(count_transaction_writes):
        call_command("seed_demo", stdout=out)
    movements = Transaction.objects.filter(type__in=("deposit", "withdrawal", "transfer")).count()
    assert "movements: deposit" in out.getvalue()
    assert movements == 2000
    assert 0 < len(writes) <= movements / 20, len(writes)


def test_progress_off_a_terminal_prints_a_line_every_few_seconds_with_an_eta():
    from transactions.management.commands.seed_demo import Progress

    now = [100.0]
    out = io.StringIO()
    progress = Progress(out, "transactions", 1000, interval=3.0, clock=lambda: now[0])
    for _ in range(10):  # 100 items a second
        now[0] += 1.0
        progress.advance(100)
    progress.close()
    assert out.getvalue().splitlines() == [
        "transactions: 300/1000 (30%), 100/s, ETA 7s",
        "transactions: 600/1000 (60%), 100/s, ETA 4s",
        "transactions: 900/1000 (90%), 100/s, ETA 1s",
        "transactions: 1000 in 10.0s",
    ]
