import pytest

from accounts.exceptions import InvalidPin
from accounts.tests.factories import AdminFactory
from audit.models import AuditAction, AuditRecord
from ledger.exceptions import AccountFrozen, CurrencyMismatch, InsufficientFunds, SameAccount
from ledger.services.customer_accounts import account_freeze
from ledger.tests.factories import customer_account
from ledgerx.exceptions import NotFound, ValidationFailed
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, books, funded_account, new_key

pytestmark = pytest.mark.django_db


def _transfer(source, destination, amount, **kwargs):
    kwargs.setdefault("idempotency_key", new_key())
    return transfer_create(actor=source.owner, source=source, destination=destination, amount=amount, pin=PIN, **kwargs)


def test_transfer_to_another_users_account():
    source = funded_account(amount=10_000)
    destination = funded_account(amount=0)
    outcome = _transfer(source, destination, 2500, description="rent")
    source.refresh_from_db()
    destination.refresh_from_db()
    assert (source.posted, destination.posted) == (7500, 2500)
    txn = outcome.transaction
    assert (txn.type, txn.status, txn.amount, txn.description) == ("transfer", "committed", 2500, "rent")
    lines = sorted(txn.entry.postings.values_list("account_id", "amount", "balance_after"), key=lambda row: row[1])
    assert lines == [(source.pk, -2500, 7500), (destination.pk, 2500, 2500)]
    assert AuditRecord.objects.filter(action=AuditAction.TRANSFER_CREATED, target_id=str(txn.pk)).count() == 1


def test_hold_reserves_without_posting():
    source = funded_account(amount=10_000)
    destination = funded_account(amount=0)
    entries_before = books()["entries"]
    outcome = _transfer(source, destination, 4000, hold=True)
    source.refresh_from_db()
    destination.refresh_from_db()
    assert (source.posted, source.pending, source.available) == (10_000, 4000, 6000)
    assert (destination.posted, destination.pending) == (0, 0)
    txn = outcome.transaction
    assert (txn.status, txn.entry_id, txn.committed_at) == ("pending", None, None)
    assert txn.expires_at is not None
    assert books()["entries"] == entries_before
    # The held money is not available to another transfer.
    before = books()
    with pytest.raises(InsufficientFunds):
        _transfer(source, destination, 6001)
    assert books() == before


@pytest.mark.parametrize(
    "make_destination, error",
    [
        (lambda source: source, SameAccount),
        (lambda source: customer_account(currency="NGN"), CurrencyMismatch),
    ],
)
def test_shape_errors_move_nothing(make_destination, error):
    source = funded_account(amount=10_000)
    destination = make_destination(source)
    before = books()
    with pytest.raises(error):
        _transfer(source, destination, 100)
    assert books() == before


def test_insufficient_funds_moves_nothing():
    source = funded_account(amount=100)
    destination = funded_account(amount=0)
    before = books()
    with pytest.raises(InsufficientFunds):
        _transfer(source, destination, 101)
    assert books() == before


@pytest.mark.parametrize("frozen_side", ["source", "destination"])
def test_frozen_side_is_refused(frozen_side):
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    account_freeze(actor=AdminFactory(), account=source if frozen_side == "source" else destination, reason="review")
    before = books()
    with pytest.raises(AccountFrozen):
        _transfer(source, destination, 100)
    assert books() == before


def test_wrong_pin_moves_nothing():
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    before = books()
    with pytest.raises(InvalidPin):
        transfer_create(
            actor=source.owner, source=source, destination=destination, amount=1, pin="0007", idempotency_key="k"
        )
    assert books() == before


def test_cannot_send_from_someone_elses_account():
    source = funded_account(amount=1000)
    thief = funded_account(amount=0)
    before = books()
    with pytest.raises(NotFound):
        transfer_create(actor=thief.owner, source=source, destination=thief, amount=1, pin=PIN, idempotency_key="k")
    assert books() == before


def test_hold_flag_must_be_boolean():
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    with pytest.raises(ValidationFailed) as exc:
        _transfer(source, destination, 1, hold="yes")
    assert list(exc.value.fields) == ["hold"]
