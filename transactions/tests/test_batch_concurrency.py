"""Batches racing each other and single transfers on real PostgreSQL: no deadlock, no overdraft."""

from collections import Counter

import pytest

from ledger.models import LedgerAccount
from transactions.batches import BatchItem, BatchItemRefused, BatchOutcome, batch_create
from transactions.services.money import transfer_create
from transactions.tests.concurrency import run_parallel
from transactions.tests.helpers import PIN, funded_account, new_key, user_with_pin
from transactions.verification import books_verify

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _posted(account) -> int:
    return LedgerAccount.objects.get(pk=account.pk).posted


def _transfer(source, destination, amount=1) -> BatchItem:
    return BatchItem(type="transfer", source_account=source.pk, destination_account=destination.pk, amount=amount)


def test_crossing_batches_never_deadlock_and_keep_every_unit():
    """Each batch moves money both ways between the same accounts, in opposite item orders."""
    owner = user_with_pin()
    accounts = [funded_account(owner=owner, amount=1_000) for _ in range(4)]
    forward = [_transfer(a, b) for a in accounts for b in accounts if a != b]
    backward = list(reversed(forward))

    def run(items):
        return lambda: batch_create(actor=owner, items=items, pin=PIN, idempotency_key=new_key())

    results = run_parallel([run(forward), run(backward)] * 4)
    assert [type(result).__name__ for result in results] == ["BatchOutcome"] * 8
    assert all(result.body["succeeded"] == len(forward) for result in results)
    # Every account sent and received the same amounts: balances unchanged, 8 x 12 transfers booked.
    assert [_posted(account) for account in accounts] == [1_000] * 4
    assert [result.name for result in books_verify() if not result.ok] == []


def test_batches_and_single_transfers_racing_for_one_balance_never_overdraw():
    owner = user_with_pin()
    source = funded_account(owner=owner, amount=1_000)
    sink = funded_account(amount=0)

    def batch():
        # 3 x 100: an atomic batch either fits whole or is refused whole.
        return batch_create(actor=owner, items=[_transfer(source, sink, 100)] * 3, pin=PIN, idempotency_key=new_key())

    def single():
        return transfer_create(actor=owner, source=source, destination=sink, amount=100, pin=PIN, idempotency_key=new_key())

    results = run_parallel([batch, single] * 5)
    moved = sum(300 if isinstance(r, BatchOutcome) else 100 for r in results if not isinstance(r, Exception))
    refused = Counter(type(r).__name__ for r in results if isinstance(r, Exception))
    assert set(refused) <= {"BatchItemRefused", "InsufficientFunds"}, refused
    assert all(r.code == "insufficient_funds" for r in results if isinstance(r, BatchItemRefused))
    assert moved <= 1_000
    assert (_posted(source), _posted(sink)) == (1_000 - moved, moved)
    assert moved >= 700  # the balance was drained as far as whole requests allowed (at most 3 units idle)
    assert [result.name for result in books_verify() if not result.ok] == []


def test_a_duplicate_batch_in_flight_moves_money_once():
    owner = user_with_pin()
    source = funded_account(owner=owner, amount=1_000)
    sink = funded_account(amount=0)
    items = [_transfer(source, sink, 100)] * 2

    def same_key():
        return batch_create(actor=owner, items=items, pin=PIN, idempotency_key="dup-batch")

    results = run_parallel([same_key] * 6)
    kinds = Counter(type(r).__name__ for r in results)
    assert set(kinds) <= {"BatchOutcome", "IdempotencyInProgress"}, kinds
    assert (_posted(source), _posted(sink)) == (800, 200)
    assert sum(1 for r in results if isinstance(r, BatchOutcome) and not r.replayed) == 1
