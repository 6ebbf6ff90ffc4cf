"""PostgreSQL itself refuses to corrupt the books (triggers and check constraints)."""

import uuid

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.tests.factories import customer_account
from transactions.services.money import deposit_create
from transactions.tests.helpers import new_key

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _funded():
    account = customer_account()
    deposit_create(actor=account.owner, account=account, amount=500, idempotency_key=new_key())
    return account


def test_raw_unbalanced_entry_is_refused_at_commit():
    account = _funded()
    counts = (JournalEntry.objects.count(), Posting.objects.count())
    with pytest.raises(IntegrityError, match="does not balance"):
        with transaction.atomic():
            _raw(
                "INSERT INTO ledger_journalentry (ref_type, ref_id, created_at) VALUES ('hack', %s, now())",
                [uuid.uuid4()],
            )
            _raw(
                "INSERT INTO ledger_posting (entry_id, account_id, currency, amount, balance_after, created_at) "
                "VALUES (currval('ledger_journalentry_id_seq'), %s, 'USD', 100, 600, now())",
                [account.pk],
            )
            # A second, still unbalanced posting: the check runs at commit, not per row.
            _raw(
                "INSERT INTO ledger_posting (entry_id, account_id, currency, amount, balance_after, created_at) "
                "VALUES (currval('ledger_journalentry_id_seq'), %s, 'USD', -1, 599, now())",
                [account.pk],
            )
    assert (JournalEntry.objects.count(), Posting.objects.count()) == counts


def test_entry_without_postings_is_refused_at_commit():
    count = JournalEntry.objects.count()
    with pytest.raises(IntegrityError, match="fewer than two postings"):
        with transaction.atomic():
            _raw("INSERT INTO ledger_journalentry (ref_type, ref_id, created_at) VALUES ('x', %s, now())", [uuid.uuid4()])
    assert JournalEntry.objects.count() == count


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_posting SET amount = amount + 1",
        "DELETE FROM ledger_posting",
        "UPDATE ledger_journalentry SET ref_type = 'x'",
        "DELETE FROM ledger_journalentry",
    ],
)
def test_postings_and_entries_are_append_only(sql):
    _funded()
    before = list(Posting.objects.order_by("id").values_list("id", "amount", "balance_after"))
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            _raw(sql)
    assert list(Posting.objects.order_by("id").values_list("id", "amount", "balance_after")) == before


def test_customer_balance_cannot_go_negative_in_the_database():
    account = _funded()
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            _raw("UPDATE ledger_ledgeraccount SET posted = -1 WHERE id = %s", [account.pk])
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            _raw("UPDATE ledger_ledgeraccount SET pending = posted + 1 WHERE id = %s", [account.pk])
    account.refresh_from_db()
    assert (account.posted, account.pending) == (500, 0)
    # System accounts may go negative (funding is -500 here).
    assert sum(LedgerAccount.objects.filter(kind="system", system_role="funding").values_list("posted", flat=True)) == -500


def test_transaction_amount_must_be_positive():
    account = _funded()
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            _raw(
                "INSERT INTO transactions_transaction (id, type, status, amount, currency, destination_account_id, "
                "description, metadata, created_at) VALUES (%s, 'deposit', 'committed', 0, 'USD', %s, '', '{}', now())",
                [uuid.uuid4(), account.pk],
            )
