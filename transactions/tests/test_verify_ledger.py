import re

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.tests.factories import AdminFactory
from audit.models import VerificationRun
from transactions.services.money import transfer_create
from transactions.services.reversals import transaction_reverse
from transactions.tests.helpers import PIN, funded_account, new_key
from transactions.verification import books_verify

pytestmark = pytest.mark.django_db


def _busy_books():
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    moved = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=300, pin=PIN, idempotency_key=new_key()
    ).transaction
    transfer_create(
        actor=source.owner, source=source, destination=destination, amount=200, pin=PIN, idempotency_key=new_key(), hold=True
    )
    transaction_reverse(actor=AdminFactory(), transaction=moved, reason="test")
    return source, destination


def test_clean_books_pass(capsys):
    _busy_books()
    results = books_verify()
    assert [result.name for result in results if not result.ok] == []
    assert len(results) == 13
    call_command("verify_ledger")
    assert "13 checks, 13 ok, 0 breached" in capsys.readouterr().out
    run = VerificationRun.objects.get()  # shown on the admin dashboard
    assert (run.kind, run.ok, run.summary) == ("ledger", True, "13 checks, 13 ok, 0 breached")


@pytest.mark.parametrize(
    "corruption, check",
    [
        ("UPDATE ledger_ledgeraccount SET posted = posted + 1 WHERE id = %s", "every stored posted balance equals the sum of its postings"),
        ("UPDATE ledger_ledgeraccount SET pending = pending - 1 WHERE id = %s", "every stored pending balance equals the sum of its open holds"),
    ],
)
def test_breaches_are_reported_and_exit_non_zero(corruption, check, capsys):
    source, _destination = _busy_books()
    with connection.cursor() as cursor:
        cursor.execute(corruption, [source.pk if connection.vendor == "postgresql" else source.pk.hex])
    breached = [result for result in books_verify() if not result.ok]
    assert [result.name for result in breached] == [check]
    assert breached[0].breaches == 1
    # The example names the account as everything else does: its number and its id with dashes.
    assert breached[0].examples[0].startswith(f"account {source.number}, account_id {source.pk}, ")
    with pytest.raises(CommandError) as exc:
        call_command("verify_ledger")
    assert exc.value.returncode == 1
    out = capsys.readouterr().out
    assert f"BREACH  {check}: 1\n          e.g. account {source.number}, account_id {source.pk}, " in out
    run = VerificationRun.objects.get()
    assert (run.kind, run.ok, run.summary) == ("ledger", False, "13 checks, 12 ok, 1 breached")


def test_unbalanced_entry_written_behind_the_services_back_is_reported():
    """On SQLite nothing in the database refuses it (PostgreSQL does, see ledger/tests/test_db_invariants.py)."""
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses the raw unbalanced entry itself")
    import uuid

    source, _destination = _busy_books()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_journalentry (ref_type, ref_id, created_at) VALUES ('hack', %s, '2026-01-01')",
            [uuid.uuid4().hex],
        )
        cursor.execute(
            "INSERT INTO ledger_posting (entry_id, account_id, currency, amount, balance_after, created_at) "
            "VALUES ((SELECT MAX(id) FROM ledger_journalentry), %s, 'USD', 5, 0, '2026-01-01')",
            [source.pk.hex],
        )
    breached = {result.name: result.breaches for result in books_verify() if not result.ok}
    assert breached == {
        "every journal entry balances per currency": 1,
        "every journal entry has at least two postings": 1,
        "every stored posted balance equals the sum of its postings": 1,
        "every posting's balance_after is the running balance": 1,
    }


def test_replica_needs_replicas(settings):
    settings.REPLICA_ALIASES = []
    with pytest.raises(CommandError, match="--replica needs DATABASE_REPLICA_URLS"):
        call_command("verify_ledger", "--replica")


def test_replica_runs_every_check_in_the_replicas_scope(settings, capsys, monkeypatch):
    """Each check's SQL goes to the chosen replica's connection (here the test database under another name)."""
    from ledger import verification
    from ledgerx.db import replicas

    settings.REPLICA_ALIASES = ["replica1"]
    from transactions.management.commands import verify_ledger

    monkeypatch.setattr(
        verify_ledger, "replica_state", lambda alias, fresh=False: replicas.ReplicaState(0, up=True, replay_lsn=7, lag=0.0)
    )
    used = []
    monkeypatch.setattr(verification, "connections", {"replica1": connection})
    real_alias = verification.current_read_alias
    monkeypatch.setattr(verification, "current_read_alias", lambda: used.append(real_alias()) or real_alias())
    _busy_books()
    call_command("verify_ledger", "--replica")
    out = capsys.readouterr().out
    assert "reading from replica1" in out
    assert re.search(r"(\d+) checks, \1 ok, 0 breached", out), out  # every check ran, and passed
    assert used and set(used) == {"replica1"}
