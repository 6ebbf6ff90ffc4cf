import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import AdminFactory
from audit.models import AuditAction, AuditRecord
from ledger.exceptions import AccountFrozen
from ledger.services.customer_accounts import account_freeze
from ledgerx.exceptions import Forbidden, InvalidState
from transactions.models import Transaction
from transactions.services.holds import hold_commit, hold_expire, hold_void
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, books, funded_account, new_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def hold():
    source = funded_account(amount=10_000)
    destination = funded_account(amount=0)
    outcome = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=3000, pin=PIN, idempotency_key=new_key(), hold=True
    )
    return outcome.transaction


def _balances(txn):
    txn.source_account.refresh_from_db()
    txn.destination_account.refresh_from_db()
    return (
        (txn.source_account.posted, txn.source_account.pending),
        (txn.destination_account.posted, txn.destination_account.pending),
    )


def test_commit_posts_and_releases(hold):
    committed = hold_commit(actor=hold.source_account.owner, transaction=hold)
    assert committed.status == "committed" and committed.committed_at is not None
    assert _balances(hold) == ((7000, 0), (3000, 0))
    assert sorted(committed.entry.postings.values_list("amount", flat=True)) == [-3000, 3000]
    assert committed.entry.ref_id == hold.pk
    assert AuditRecord.objects.filter(action=AuditAction.HOLD_COMMITTED, target_id=str(hold.pk)).count() == 1


def test_void_releases_without_posting(hold):
    entries = books()["entries"]
    voided = hold_void(actor=hold.source_account.owner, transaction=hold)
    assert voided.status == "voided" and voided.entry_id is None
    assert _balances(hold) == ((10_000, 0), (0, 0))
    assert books()["entries"] == entries


@pytest.mark.parametrize("first, second", [(hold_commit, hold_commit), (hold_commit, hold_void), (hold_void, hold_commit), (hold_void, hold_void)])
def test_second_finish_is_invalid_state(hold, first, second):
    first(actor=hold.source_account.owner, transaction=hold)
    before = books()
    with pytest.raises(InvalidState):
        second(actor=hold.source_account.owner, transaction=hold)
    assert books() == before


def test_only_source_owner_may_finish(hold):
    before = books()
    for action in (hold_commit, hold_void):
        with pytest.raises(Forbidden):
            action(actor=hold.destination_account.owner, transaction=hold)
    assert books() == before


def test_commit_into_frozen_destination_is_refused(hold):
    account_freeze(actor=AdminFactory(), account=hold.destination_account, reason="review")
    before = books()
    with pytest.raises(AccountFrozen):
        hold_commit(actor=hold.source_account.owner, transaction=hold)
    assert books() == before
    hold_void(actor=hold.source_account.owner, transaction=hold)  # releasing is still allowed
    assert _balances(hold) == ((10_000, 0), (0, 0))


def test_committing_an_expired_hold_is_refused_and_releases_it_at_once(hold):
    Transaction.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    hold.refresh_from_db()
    with pytest.raises(InvalidState, match="expired"):
        hold_commit(actor=hold.source_account.owner, transaction=hold)
    hold.refresh_from_db()
    assert hold.status == "voided"
    assert _balances(hold) == ((10_000, 0), (0, 0))
    assert AuditRecord.objects.filter(action=AuditAction.HOLD_EXPIRED, target_id=str(hold.pk), actor=None).count() == 1
    assert not AuditRecord.objects.filter(action=AuditAction.HOLD_COMMITTED).exists()
    assert hold_expire(now=timezone.now() + timedelta(days=30)) == 0  # nothing left for the sweep


def test_expiry_sweep_voids_expired_holds(hold):
    later = timezone.now() + timedelta(days=30)
    assert hold_expire(now=later) == 1
    hold.refresh_from_db()
    assert hold.status == "voided"
    assert _balances(hold) == ((10_000, 0), (0, 0))
    assert AuditRecord.objects.filter(action=AuditAction.HOLD_EXPIRED, target_id=str(hold.pk), actor=None).count() == 1
    assert hold_expire(now=later) == 0


def test_expiry_leaves_fresh_holds_alone(hold):
    assert hold_expire() == 0
    hold.refresh_from_db()
    assert hold.status == "pending"


def test_expire_holds_command(hold, capsys):
    Transaction.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    call_command("expire_holds")
    assert "expired 1 hold(s)" in capsys.readouterr().out
    hold.refresh_from_db()
    assert hold.status == "voided"


def test_expire_holds_command_keeps_sweeping_with_every(hold, capsys, monkeypatch):
    from transactions.management.commands import expire_holds

    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 1:  # the hold expires between two sweeps
            Transaction.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        else:
            raise KeyboardInterrupt  # stop the loop

    monkeypatch.setattr(expire_holds.time, "sleep", sleep)
    with pytest.raises(KeyboardInterrupt):
        call_command("expire_holds", every=30)
    lines = capsys.readouterr().out.splitlines()
    # Each sweep says when it ran (UTC, to the second), so a scheduler's log reads as a timeline.
    assert [re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 (expired \d hold\(s\))", line)[1] for line in lines] == [
        "expired 0 hold(s)",
        "expired 1 hold(s)",
    ]
    assert sleeps == [30, 30]
    hold.refresh_from_db()
    assert hold.status == "voided"


def test_deposits_and_withdrawals_are_not_holds():
    from transactions.services.money import deposit_create, withdrawal_create

    account = funded_account(amount=1000)
    deposit = deposit_create(actor=account.owner, account=account, amount=5, idempotency_key=new_key()).transaction
    withdrawal = withdrawal_create(
        actor=account.owner, account=account, amount=5, pin=PIN, idempotency_key=new_key()
    ).transaction
    before = books()
    for txn in (deposit, withdrawal):
        for action in (hold_commit, hold_void):
            with pytest.raises(InvalidState):
                action(actor=account.owner, transaction=txn)
    assert books() == before


def test_suspended_owner_cannot_commit_but_can_void(hold):
    from accounts.exceptions import UserSuspended

    owner = hold.source_account.owner
    owner.status = "suspended"
    owner.save(update_fields=["status"])
    before = books()
    with pytest.raises(UserSuspended):
        hold_commit(actor=owner, transaction=hold)
    assert books() == before
    hold_void(actor=owner, transaction=hold)
    assert _balances(hold) == ((10_000, 0), (0, 0))
