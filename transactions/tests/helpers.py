"""Helpers for money tests: users with PINs, funded accounts, and a snapshot of the books."""

import itertools

from accounts.services import pin_set
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from audit.models import AuditRecord
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.tests.factories import customer_account
from transactions.models import IdempotencyRecord, Transaction

PIN = "4826"
_keys = itertools.count(1)


def new_key() -> str:
    return f"key-{next(_keys)}"


def user_with_pin(**kwargs):
    user = UserFactory(**kwargs)
    pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    return user


def funded_account(*, owner=None, amount: int = 10_000, currency: str = "USD"):
    from transactions.services import deposit_create

    owner = owner or user_with_pin()
    account = customer_account(owner=owner, currency=currency)
    if amount:
        deposit_create(actor=owner, account=account, amount=amount, idempotency_key=new_key())
    account.refresh_from_db()
    return account


def books() -> dict:
    """Everything a failed request must leave untouched."""
    return {
        "balances": {
            str(pk): (posted, pending, version)
            for pk, posted, pending, version in LedgerAccount.objects.values_list("pk", "posted", "pending", "version")
        },
        "entries": JournalEntry.objects.count(),
        "postings": Posting.objects.count(),
        "transactions": sorted(Transaction.objects.values_list("pk", "status")),
        "idempotency": IdempotencyRecord.objects.count(),
        "audit_money": AuditRecord.objects.filter(target_type__in=["transaction", "ledger_account"]).count(),
    }
