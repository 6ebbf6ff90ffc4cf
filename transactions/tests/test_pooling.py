"""Behind a transaction-pooling PgBouncer (``LEDGERX_DB_TRANSACTION_POOLING=1``) nothing outlives a
transaction, and keys still move money once.

These run on a direct connection with the setting on (what the code does is decided by the
setting); CI also runs the whole money suite through a real PgBouncer (``.ci/run``).
"""

from collections import Counter
from unittest import mock

import bcrypt
import pytest
from django.db import connection

from accounts.exceptions import InvalidPin
from transactions.exceptions import IdempotencyInProgress
from transactions.idempotency import _in_flight_guard, _PooledGuard
from transactions.models import Transaction
from transactions.services.money import deposit_create, transfer_create
from transactions.tests.concurrency import run_parallel
from transactions.tests.helpers import PIN, funded_account, key_in_flight

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pooled(settings):
    settings.DB_TRANSACTION_POOLING = True


def _advisory_locks_of_this_session() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.parametrize("pin", [PIN, "0000"])
def test_no_session_lock_is_held_across_the_pin_check(pooled, pin):
    source = funded_account(amount=100)
    destination = funded_account(amount=0)
    held_during_bcrypt = []
    original = bcrypt.checkpw

    def checkpw(*args):
        held_during_bcrypt.append(_advisory_locks_of_this_session())
        return original(*args)

    with mock.patch.object(bcrypt, "checkpw", side_effect=checkpw):
        try:
            transfer_create(actor=source.owner, source=source, destination=destination, amount=1, pin=pin, idempotency_key="k")
        except InvalidPin:
            assert pin != PIN
    assert held_during_bcrypt == [0]
    assert _advisory_locks_of_this_session() == 0


def test_a_key_in_flight_is_refused_before_the_pin_check(pooled):
    source = funded_account(amount=100)
    destination = funded_account(amount=0)
    assert isinstance(_in_flight_guard(source.owner, "transfers", "t"), _PooledGuard)
    args = dict(actor=source.owner, source=source, destination=destination, amount=1, idempotency_key="t")
    with key_in_flight(source.owner, "transfers", "t"), pytest.raises(IdempotencyInProgress):
        transfer_create(pin="0000", **args)
    source.owner.refresh_from_db()
    assert source.owner.failed_pin_attempts == 0
    first = transfer_create(pin=PIN, **args)
    assert transfer_create(pin=PIN, **args).body == first.body


@pytest.mark.parametrize("with_pin", [False, True])
def test_parallel_duplicates_move_money_once(pooled, with_pin):
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)

    def send():
        if with_pin:
            return transfer_create(
                actor=source.owner, source=source, destination=destination, amount=7, pin=PIN, idempotency_key="dup"
            )
        return deposit_create(actor=source.owner, account=source, amount=7, idempotency_key="dup")

    results = run_parallel([send] * 8)
    kinds = Counter(type(result).__name__ for result in results)
    assert set(kinds) <= {"MoneyOutcome", "IdempotencyInProgress"}, kinds
    moved = {result.transaction.pk for result in results if hasattr(result, "transaction")}
    assert len(moved) == 1
    assert Transaction.objects.filter(amount=7).count() == 1
