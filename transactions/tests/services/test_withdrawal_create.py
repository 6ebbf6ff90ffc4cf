import pytest

from accounts.exceptions import InvalidPin, PinNotSet, UserSuspended
from accounts.tests.factories import AdminFactory, UserFactory
from audit.models import AuditAction, AuditRecord
from ledger.exceptions import AccountFrozen, InsufficientFunds
from ledger.selectors import system_balance
from ledger.services.customer_accounts import account_freeze
from ledger.tests.factories import customer_account
from ledgerx.exceptions import NotFound
from transactions.services.money import withdrawal_create
from transactions.tests.helpers import PIN, books, funded_account, new_key, user_with_pin

pytestmark = pytest.mark.django_db


def test_withdrawal_pays_out():
    account = funded_account(amount=5000)
    outcome = withdrawal_create(actor=account.owner, account=account, amount=1200, pin=PIN, idempotency_key="w1")
    account.refresh_from_db()
    assert (account.posted, account.pending) == (3800, 0)
    assert system_balance(currency="USD", role="payouts") == 1200
    txn = outcome.transaction
    assert (txn.type, txn.status, txn.source_account_id, txn.destination_account_id) == (
        "withdrawal",
        "committed",
        account.pk,
        None,
    )
    assert sorted(txn.entry.postings.values_list("amount", flat=True)) == [-1200, 1200]
    assert AuditRecord.objects.filter(action=AuditAction.WITHDRAWAL_CREATED, target_id=str(txn.pk)).count() == 1


def test_whole_balance_can_be_withdrawn_but_not_more():
    account = funded_account(amount=5000)
    before = books()
    with pytest.raises(InsufficientFunds):
        withdrawal_create(actor=account.owner, account=account, amount=5001, pin=PIN, idempotency_key="w1")
    assert books() == before
    withdrawal_create(actor=account.owner, account=account, amount=5000, pin=PIN, idempotency_key="w2")
    account.refresh_from_db()
    assert account.posted == 0


def test_wrong_pin_moves_nothing():
    account = funded_account(amount=5000)
    before = books()
    with pytest.raises(InvalidPin) as exc:
        withdrawal_create(actor=account.owner, account=account, amount=100, pin="9999", idempotency_key="w1")
    assert exc.value.attempts_remaining == 2
    assert books() == before


def test_pin_not_set():
    owner = UserFactory()
    account = customer_account(owner=owner)
    before = books()
    with pytest.raises(PinNotSet):
        withdrawal_create(actor=owner, account=account, amount=100, pin=PIN, idempotency_key="w1")
    assert books() == before


def test_suspended_user_is_refused_even_with_right_pin():
    account = funded_account(amount=5000)
    account.owner.status = "suspended"
    account.owner.save(update_fields=["status"])
    before = books()
    with pytest.raises(UserSuspended):
        withdrawal_create(actor=account.owner, account=account, amount=100, pin=PIN, idempotency_key="w1")
    assert books() == before


def test_frozen_account_cannot_send():
    account = funded_account(amount=5000)
    account_freeze(actor=AdminFactory(), account=account, reason="fraud check")
    before = books()
    with pytest.raises(AccountFrozen):
        withdrawal_create(actor=account.owner, account=account, amount=100, pin=PIN, idempotency_key="w1")
    assert books() == before


def test_other_users_account_is_not_found():
    account = funded_account(amount=5000)
    before = books()
    with pytest.raises(NotFound):
        withdrawal_create(actor=user_with_pin(), account=account, amount=100, pin=PIN, idempotency_key=new_key())
    assert books() == before
