import pytest

from accounts.tests.factories import UserFactory
from audit.models import AuditAction, AuditRecord
from ledger.models import LedgerAccount
from ledger.services.customer_accounts import _luhn_digit, account_open
from ledgerx.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db


def test_open_creates_empty_customer_account_and_system_shards():
    owner = UserFactory()
    account = account_open(actor=owner, owner=owner, currency="NGN", name="Savings")
    account.refresh_from_db()
    assert (account.kind, account.currency, account.name, account.status) == ("customer", "NGN", "Savings", "active")
    assert (account.posted, account.pending, account.version) == (0, 0, 0)
    assert len(account.number) == 12 and account.number.isdigit()
    assert _luhn_digit(account.number[:-1]) == account.number[-1]
    shards = LedgerAccount.objects.filter(kind="system", currency="NGN")
    assert {role: shards.filter(system_role=role).count() for role in ("funding", "payouts", "fx_pool")} == {
        "funding": 8, "payouts": 8, "fx_pool": 32,
    }
    audit = AuditRecord.objects.get(action=AuditAction.ACCOUNT_OPENED)
    assert audit.target_id == str(account.pk) and audit.data["currency"] == "NGN"


def test_a_user_may_hold_several_accounts():
    owner = UserFactory()
    first = account_open(actor=owner, owner=owner, currency="USD")
    second = account_open(actor=owner, owner=owner, currency="USD")
    assert first.number != second.number
    assert LedgerAccount.objects.filter(owner=owner).count() == 2


@pytest.mark.parametrize("currency", ["XXX", "usd", "", None])
def test_unsupported_currency(currency):
    owner = UserFactory()
    with pytest.raises(ValidationFailed) as exc:
        account_open(actor=owner, owner=owner, currency=currency)
    assert list(exc.value.fields) == ["currency"]
    assert LedgerAccount.objects.count() == 0


def test_name_too_long():
    owner = UserFactory()
    with pytest.raises(ValidationFailed):
        account_open(actor=owner, owner=owner, currency="USD", name="x" * 101)
    assert LedgerAccount.objects.filter(kind="customer").count() == 0
