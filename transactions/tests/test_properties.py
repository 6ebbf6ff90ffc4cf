"""Property: any sequence of money operations keeps every ledger invariant and matches a model."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tests.factories import AdminFactory
from ledger.exceptions import InsufficientFunds
from ledger.models import LedgerAccount
from ledgerx.exceptions import InvalidState
from transactions.models import Transaction
from transactions.services.holds import hold_commit, hold_void
from transactions.services.money import deposit_create, transfer_create, withdrawal_create
from transactions.services.reversals import transaction_reverse
from transactions.tests.helpers import PIN, funded_account, new_key
from transactions.verification import books_verify

pytestmark = pytest.mark.django_db

amounts = st.integers(min_value=1, max_value=600)
index = st.integers(min_value=0, max_value=2)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), index, amounts),
        st.tuples(st.just("withdraw"), index, amounts),
        st.tuples(st.just("transfer"), index, index, amounts, st.booleans()),
        st.tuples(st.just("commit"), st.integers(0, 20)),
        st.tuples(st.just("void"), st.integers(0, 20)),
        st.tuples(st.just("reverse"), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=12,
)


class Model:
    """The expected posted/pending balances, computed without the database."""

    def __init__(self, accounts):
        self.accounts = accounts
        self.posted = {account.pk: account.posted for account in accounts}
        self.pending = {account.pk: 0 for account in accounts}

    def available(self, pk):
        return self.posted[pk] - self.pending[pk]


def _expect(expected_error, call):
    """Run ``call``; it must raise exactly ``expected_error`` (or nothing when None)."""
    if expected_error is None:
        return call()
    with pytest.raises(expected_error):
        call()
    return None


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations)
def test_random_operations_keep_the_books(ops):
    admin = AdminFactory()
    accounts = [funded_account(amount=1000) for _ in range(3)]
    model = Model(accounts)
    holds: list[Transaction] = []
    reversible: list[Transaction] = []
    for op in ops:
        kind = op[0]
        if kind == "deposit":
            _, i, amount = op
            account = accounts[i]
            deposit_create(actor=account.owner, account=account, amount=amount, idempotency_key=new_key())
            model.posted[account.pk] += amount
        elif kind == "withdraw":
            _, i, amount = op
            account = accounts[i]
            ok = model.available(account.pk) >= amount
            outcome = _expect(
                None if ok else InsufficientFunds,
                lambda: withdrawal_create(actor=account.owner, account=account, amount=amount, pin=PIN, idempotency_key=new_key()),
            )
            if ok:
                model.posted[account.pk] -= amount
                reversible.append(outcome.transaction)
        elif kind == "transfer":
            _, i, j, amount, hold = op
            if i == j:
                continue
            source, destination = accounts[i], accounts[j]
            ok = model.available(source.pk) >= amount
            outcome = _expect(
                None if ok else InsufficientFunds,
                lambda: transfer_create(
                    actor=source.owner,
                    source=source,
                    destination=destination,
                    amount=amount,
                    pin=PIN,
                    idempotency_key=new_key(),
                    hold=hold,
                ),
            )
            if ok and hold:
                model.pending[source.pk] += amount
                holds.append(outcome.transaction)
            elif ok:
                model.posted[source.pk] -= amount
                model.posted[destination.pk] += amount
                reversible.append(outcome.transaction)
        elif kind in ("commit", "void"):
            if not holds:
                continue
            txn = holds[op[1] % len(holds)]
            txn.refresh_from_db()
            pending = txn.status == "pending"
            action = hold_commit if kind == "commit" else hold_void
            _expect(None if pending else InvalidState, lambda: action(actor=txn.source_account.owner, transaction=txn))
            if pending:
                model.pending[txn.source_account_id] -= txn.amount
                if kind == "commit":
                    model.posted[txn.source_account_id] -= txn.amount
                    model.posted[txn.destination_account_id] += txn.amount
                    reversible.append(txn)
        elif kind == "reverse":
            if not reversible:
                continue
            txn = reversible[op[1] % len(reversible)]
            txn.refresh_from_db()
            if txn.status != "committed":
                _expect(InvalidState, lambda: transaction_reverse(actor=admin, transaction=txn, reason="p"))
                continue
            # Undo: money goes back from destination to source (system sides unchecked).
            back = txn.destination_account_id
            ok = back is None or model.available(back) >= txn.amount
            _expect(None if ok else InsufficientFunds, lambda: transaction_reverse(actor=admin, transaction=txn, reason="p"))
            if ok:
                if back is not None:
                    model.posted[back] -= txn.amount
                if txn.source_account_id is not None:
                    model.posted[txn.source_account_id] += txn.amount
        stored = {
            pk: (posted, pending)
            for pk, posted, pending in LedgerAccount.objects.filter(pk__in=model.posted).values_list("pk", "posted", "pending")
        }
        assert stored == {pk: (model.posted[pk], model.pending[pk]) for pk in model.posted}
        assert [result.name for result in books_verify() if not result.ok] == []
