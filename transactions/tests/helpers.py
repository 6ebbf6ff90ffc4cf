"""Helpers for money tests: users with PINs, funded accounts, and a snapshot of the books."""

import contextlib
import itertools
import threading

import pytest
from django.conf import settings

from accounts.services import pin_set
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from audit.models import AuditRecord
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.tests.factories import customer_account
from transactions.models import IdempotencyRecord, Transaction

PIN = "4826"

# What only a direct PostgreSQL session gives (a session-level advisory lock that dies
# with its connection, prepared statements, startup options): behind a transaction-pooling
# PgBouncer LedgerX uses none of them by design (README "Scaling out"); the pooled path's
# own guarantees are tested in transactions/tests/test_pooling.py.
needs_direct_session = pytest.mark.skipif(
    settings.DB_TRANSACTION_POOLING, reason="a direct PostgreSQL session, not transaction pooling"
)
_keys = itertools.count(1)


def new_key() -> str:
    return f"key-{next(_keys)}"


def user_with_pin(**kwargs):
    user = UserFactory(**kwargs)
    pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    return user


def funded_account(*, owner=None, amount: int = 10_000, currency: str = "USD"):
    from transactions.services.money import deposit_create

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


@contextlib.contextmanager
def key_in_flight(user, endpoint: str, key: str):
    """Make (user, endpoint, key) look taken by another worker's running request.

    PostgreSQL: another connection holds the key's advisory lock. Elsewhere:
    the cache marker is set by "someone else". Behind a transaction-pooling
    PgBouncer both: the marker (the guard across a PIN check) and the lock,
    held in a transaction (the only scope that survives the pooler).
    """
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection, connections, transaction

    from transactions.idempotency import _in_flight_guard

    guard = _in_flight_guard(user, endpoint, key)
    if connection.vendor != "postgresql":
        cache.set(guard.marker, "another-worker", 60)
        try:
            yield
        finally:
            cache.delete(guard.marker)
        return
    pooled = settings.DB_TRANSACTION_POOLING
    if pooled:
        cache.set(guard.marker, "another-worker", 60)
    held, release = threading.Event(), threading.Event()

    def hold():
        try:
            if pooled:
                with transaction.atomic(), connections["default"].cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [guard.lock_key])
                    held.set()
                    release.wait(20)
                return
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [guard.lock_key])
                held.set()
                release.wait(20)
                cursor.execute("SELECT pg_advisory_unlock(%s)", [guard.lock_key])
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)
        if pooled:
            cache.delete(guard.marker)
