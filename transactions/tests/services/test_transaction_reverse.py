import pytest

from accounts.tests.factories import AdminFactory
from audit.models import AuditAction, AuditRecord
from ledger.exceptions import InsufficientFunds
from ledger.selectors import system_balance
from ledger.services.customer_accounts import account_freeze
from ledgerx.exceptions import InvalidState, ValidationFailed
from transactions.models import Transaction
from transactions.services.money import deposit_create, transfer_create, withdrawal_create
from transactions.services.reversals import transaction_reverse
from transactions.tests.helpers import PIN, books, funded_account, new_key

pytestmark = pytest.mark.django_db


def _transfer(source, destination, amount, **kwargs):
    return transfer_create(
        actor=source.owner, source=source, destination=destination, amount=amount, pin=PIN, idempotency_key=new_key(), **kwargs
    ).transaction


def test_reversing_a_transfer_undoes_it():
    admin = AdminFactory()
    source = funded_account(amount=5000)
    destination = funded_account(amount=0)
    original = _transfer(source, destination, 2000)
    reversal = transaction_reverse(actor=admin, transaction=original, reason="customer dispute")
    source.refresh_from_db()
    destination.refresh_from_db()
    original.refresh_from_db()
    assert (source.posted, destination.posted) == (5000, 0)
    assert original.status == "reversed" and original.reversed_by == reversal
    assert (reversal.type, reversal.status, reversal.amount, reversal.reverses_id) == ("reversal", "committed", 2000, original.pk)
    assert (reversal.source_account_id, reversal.destination_account_id) == (destination.pk, source.pk)
    assert reversal.metadata == {"reason": "customer dispute"}
    assert sorted(reversal.entry.postings.values_list("account_id", "amount")) == sorted(
        [(source.pk, 2000), (destination.pk, -2000)]
    )
    audit = AuditRecord.objects.get(action=AuditAction.TRANSACTION_REVERSED)
    assert (audit.actor_id, audit.target_id, audit.data["reverses"], audit.data["reason"]) == (
        admin.pk,
        str(reversal.pk),
        str(original.pk),
        "customer dispute",
    )


def test_reversing_deposit_and_withdrawal_restores_system_accounts():
    admin = AdminFactory()
    account = funded_account(amount=0)
    deposit = deposit_create(actor=account.owner, account=account, amount=900, idempotency_key=new_key()).transaction
    withdrawal = withdrawal_create(
        actor=account.owner, account=account, amount=400, pin=PIN, idempotency_key=new_key()
    ).transaction
    transaction_reverse(actor=admin, transaction=withdrawal, reason="bounced")
    transaction_reverse(actor=admin, transaction=deposit, reason="chargeback")
    account.refresh_from_db()
    assert account.posted == 0
    assert system_balance(currency="USD", role="funding") == 0
    assert system_balance(currency="USD", role="payouts") == 0


def test_reversal_refused_when_it_would_overdraw():
    admin = AdminFactory()
    source = funded_account(amount=5000)
    destination = funded_account(amount=0)
    original = _transfer(source, destination, 2000)
    _transfer(destination, source, 1500)
    before = books()
    with pytest.raises(InsufficientFunds):
        transaction_reverse(actor=admin, transaction=original, reason="dispute")
    assert books() == before


def test_reversal_of_frozen_account_is_allowed():
    admin = AdminFactory()
    source = funded_account(amount=5000)
    destination = funded_account(amount=0)
    original = _transfer(source, destination, 2000)
    account_freeze(actor=admin, account=destination, reason="fraud")
    transaction_reverse(actor=admin, transaction=original, reason="fraud")
    destination.refresh_from_db()
    assert destination.posted == 0


def test_invalid_states():
    admin = AdminFactory()
    source = funded_account(amount=5000)
    destination = funded_account(amount=0)
    original = _transfer(source, destination, 100)
    reversal = transaction_reverse(actor=admin, transaction=original, reason="r")
    pending = _transfer(source, destination, 100, hold=True)
    original.refresh_from_db()
    before = books()
    for target in (original, reversal, pending):
        with pytest.raises(InvalidState):
            transaction_reverse(actor=admin, transaction=target, reason="again")
    assert books() == before
    # A stale in-memory copy of the original still sees the committed status
    # under the lock.
    stale = Transaction.objects.get(pk=original.pk)
    stale.status = "committed"
    with pytest.raises(InvalidState):
        transaction_reverse(actor=admin, transaction=stale, reason="again")
    assert books() == before


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reason_required(reason):
    source = funded_account(amount=5000)
    destination = funded_account(amount=0)
    original = _transfer(source, destination, 100)
    before = books()
    with pytest.raises(ValidationFailed):
        transaction_reverse(actor=AdminFactory(), transaction=original, reason=reason)
    assert books() == before
