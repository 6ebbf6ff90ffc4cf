import uuid

import pytest
from django.db import transaction

from ledger.exceptions import InsufficientFunds, UnbalancedEntry
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.services.locking import accounts_lock
from ledger.services.postings import entry_post, holds_adjust
from ledger.tests.factories import customer_account

pytestmark = pytest.mark.django_db


def _locked(*accounts):
    found = accounts_lock(ids=[account.pk for account in accounts]).accounts
    return [found[account.pk] for account in accounts]


def test_unbalanced_entries_are_refused_before_writing():
    first, second = customer_account(), customer_account(currency="NGN")
    with transaction.atomic():
        a, b = _locked(first, second)
        for lines in ([(a, 5)], [(a, 5), (b, -4)], [(a, 5), (b, -5)], [(a, 0), (b, 0)]):
            with pytest.raises(UnbalancedEntry):
                entry_post(ref_type="test", ref_id=uuid.uuid4(), lines=lines)
    assert (JournalEntry.objects.count(), Posting.objects.count()) == (0, 0)


def test_customer_cannot_go_negative_or_over_held():
    first, second = customer_account(), customer_account()
    with transaction.atomic():
        a, b = _locked(first, second)
        with pytest.raises(InsufficientFunds):
            entry_post(ref_type="test", ref_id=uuid.uuid4(), lines=[(a, -1), (b, 1)])
    with transaction.atomic():
        (a,) = _locked(first)
        with pytest.raises(InsufficientFunds):
            holds_adjust(deltas={a: 1})
    assert LedgerAccount.objects.get(pk=first.pk).posted == 0


def test_balance_after_is_a_running_balance():
    first, second = customer_account(), customer_account()
    system, _ = LedgerAccount.objects.filter(kind="system", currency="USD", system_role="funding")[:2]
    with transaction.atomic():
        found = accounts_lock(ids=[first.pk, second.pk, system.pk]).accounts
        entry_post(ref_type="t", ref_id=uuid.uuid4(), lines=[(found[system.pk], -100), (found[first.pk], 100)])
        entry_post(ref_type="t", ref_id=uuid.uuid4(), lines=[(found[first.pk], -30), (found[second.pk], 30)])
    assert list(Posting.objects.filter(account=first).order_by("id").values_list("amount", "balance_after")) == [
        (100, 100),
        (-30, 70),
    ]
    first.refresh_from_db()
    assert (first.posted, first.version) == (70, 2)
