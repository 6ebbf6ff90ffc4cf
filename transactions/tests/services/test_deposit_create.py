import pytest

from accounts.models import User
from accounts.tests.factories import AdminFactory, UserFactory
from audit.models import AuditAction, AuditRecord
from ledger.exceptions import AccountFrozen
from ledger.models import LedgerAccount
from ledger.selectors import system_balance
from ledger.services.customer_accounts import account_freeze
from ledger.tests.factories import customer_account
from ledgerx.exceptions import NotFound, ValidationFailed
from transactions.exceptions import IdempotencyKeyRequired
from transactions.models import IdempotencyRecord, Transaction
from transactions.services.money import deposit_create
from transactions.tests.helpers import books, new_key

pytestmark = pytest.mark.django_db


def test_deposit_credits_account_and_debits_funding():
    owner = UserFactory()
    account = customer_account(owner=owner)

    outcome = deposit_create(
        actor=owner, account=account, amount=1050, idempotency_key="k1", description="salary", metadata={"ref": "A1"}
    )

    account.refresh_from_db()
    assert (account.posted, account.pending, account.available) == (1050, 0, 1050)
    assert system_balance(currency="USD", role="funding") == -1050
    txn = outcome.transaction
    assert (txn.type, txn.status, txn.amount, txn.currency) == ("deposit", "committed", 1050, "USD")
    assert txn.destination_account_id == account.pk and txn.source_account_id is None
    assert txn.metadata == {"ref": "A1"} and txn.description == "salary"
    postings = sorted(txn.entry.postings.values_list("amount", "balance_after", "account__kind"))
    assert postings == [(-1050, -1050, "system"), (1050, 1050, "customer")]
    assert outcome.status == 201 and outcome.replayed is False
    assert outcome.body["id"] == str(txn.pk) and outcome.body["amount"] == 1050
    record = IdempotencyRecord.objects.get()
    assert (record.key, record.endpoint, record.transaction_id, record.response_body) == (
        "k1",
        "deposits",
        txn.pk,
        outcome.body,
    )
    audit = AuditRecord.objects.get(action=AuditAction.DEPOSIT_CREATED)
    assert audit.target_id == str(txn.pk) and audit.actor_id == owner.pk and audit.data["amount"] == 1050


def test_deposits_spread_over_system_shards():
    owner = UserFactory()
    account = customer_account(owner=owner)
    for index in range(40):
        deposit_create(actor=owner, account=account, amount=1, idempotency_key=f"k{index}")
    shards = LedgerAccount.objects.filter(kind="system", system_role="funding", currency="USD")
    assert shards.count() == 8
    assert sum(shard.posted for shard in shards) == -40
    assert sum(1 for shard in shards if shard.posted) > 1


@pytest.mark.parametrize("amount", [10.5, 10.0, "1050", True, None, 0, -5, 10**15 + 1])
def test_bad_amount_is_refused_and_nothing_changes(amount):
    owner = UserFactory()
    account = customer_account(owner=owner)
    before = books()
    with pytest.raises(ValidationFailed) as exc:
        deposit_create(actor=owner, account=account, amount=amount, idempotency_key="k")
    assert list(exc.value.fields) == ["amount"]
    assert books() == before


def test_max_amount_is_accepted():
    owner = UserFactory()
    account = customer_account(owner=owner)
    deposit_create(actor=owner, account=account, amount=10**15, idempotency_key="k")
    account.refresh_from_db()
    assert account.posted == 10**15


def test_frozen_account_cannot_receive():
    owner = UserFactory()
    account = customer_account(owner=owner)
    account_freeze(actor=AdminFactory(), account=account, reason="kyc")
    before = books()
    with pytest.raises(AccountFrozen):
        deposit_create(actor=owner, account=account, amount=100, idempotency_key="k")
    assert books() == before


def test_suspended_user_cannot_deposit():
    owner = UserFactory()
    account = customer_account(owner=owner)
    User.objects.filter(pk=owner.pk).update(status="suspended")
    before = books()
    with pytest.raises(Exception) as exc:
        deposit_create(actor=owner, account=account, amount=100, idempotency_key="k")
    assert exc.value.code == "user_suspended"
    assert books() == before


def test_someone_elses_account_is_not_found():
    account = customer_account()
    before = books()
    with pytest.raises(NotFound):
        deposit_create(actor=UserFactory(), account=account, amount=100, idempotency_key="k")
    assert books() == before


def test_missing_key_is_refused():
    owner = UserFactory()
    account = customer_account(owner=owner)
    before = books()
    with pytest.raises(IdempotencyKeyRequired):
        deposit_create(actor=owner, account=account, amount=100, idempotency_key="")
    assert books() == before
    assert Transaction.objects.count() == 0


def test_metadata_limits():
    owner = UserFactory()
    account = customer_account(owner=owner)
    for bad in ({f"k{i}": "v" for i in range(21)}, {"k" * 65: "v"}, {"k": "v" * 513}, {"k": 1}, ["x"]):
        with pytest.raises(ValidationFailed) as exc:
            deposit_create(actor=owner, account=account, amount=1, idempotency_key=new_key(), metadata=bad)
        assert list(exc.value.fields) == ["metadata"]
    ok = {f"k{i}": "v" * 512 for i in range(20)}
    outcome = deposit_create(actor=owner, account=account, amount=1, idempotency_key=new_key(), metadata=ok)
    assert outcome.transaction.metadata == ok


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("metadata", {"k": "a\x00b"}, "Keys and values: Null characters are not allowed."),
        ("metadata", {"a\x00": "b"}, "Keys and values: Null characters are not allowed."),
        ("metadata", {"k": "\ud800"}, "Keys and values: Surrogate characters are not allowed: U+D800."),
        ("metadata", {"\udfff": "v"}, "Keys and values: Surrogate characters are not allowed: U+DFFF."),
        ("description", "a\x00b", "Null characters are not allowed."),
        ("description", "\ud800", "Surrogate characters are not allowed: U+D800."),
    ],
)
def test_unstorable_text_is_refused_before_the_database(field, value, message):
    # PostgreSQL's jsonb/text cannot hold NUL, and UTF-8 cannot encode a lone surrogate.
    owner = UserFactory()
    account = customer_account(owner=owner)
    before = books()
    with pytest.raises(ValidationFailed) as exc:
        deposit_create(actor=owner, account=account, amount=1, idempotency_key=new_key(), **{field: value})
    assert exc.value.fields == {field: [message]}
    assert books() == before
