"""Ledger test helpers: accounts are opened through the real service."""

from accounts.tests.factories import UserFactory
from ledger.models import LedgerAccount
from ledger.services.customer_accounts import account_open


def customer_account(*, owner=None, currency: str = "USD", name: str = "") -> LedgerAccount:
    owner = owner or UserFactory()
    return account_open(actor=owner, owner=owner, currency=currency, name=name)
