"""Admin search maps a term by its shape to exact lookups on indexed columns, never a scan.

Django's own search (``search_fields``) turns "=number" into
``UPPER(col::text) = UPPER(...)`` and ORs every field across joins: a
sequential scan on every search. These tests pin what each list finds for each
shape of term, that no case-folding or LIKE reaches the SQL, and on PostgreSQL
that the changelist's query is planned on an index.
"""

import re
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from audit.models import AuditAction, AuditRecord
from audit.tests.admin.conftest import changelist_plan
from ledger.models import LedgerAccount, Posting
from transactions.models import Transaction
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key, user_with_pin

pytestmark = pytest.mark.django_db
# Lists that also search by the start of a term (test_prefix_search.py): LIKE 'term%' on an index.
PREFIX_SEARCHED = ("accounts_user", "ledger_ledgeraccount")


@dataclass
class World:
    alice: User
    bob: User
    source: LedgerAccount  # alice's, funded by a deposit
    destination: LedgerAccount  # bob's, funded only by the transfer
    other: LedgerAccount  # someone else's, which no search below may find
    transfer: Transaction


@pytest.fixture
def world(db) -> World:
    alice, bob = user_with_pin(email="alice@example.com"), user_with_pin(email="bob@example.com")
    source, destination = funded_account(owner=alice, amount=5000), funded_account(owner=bob, amount=0)
    other = funded_account(amount=700)
    transfer = transfer_create(
        actor=alice, source=source, destination=destination, amount=1200, pin=PIN, idempotency_key=new_key()
    ).transaction
    return World(alice, bob, source, destination, other, transfer)


def _search(client, model: str, term: str):
    """GET the changelist with ``?q=term``: (pks listed, messages, SQL run)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(f"admin:{model}_changelist"), {"q": term})
    assert response.status_code == 200
    pks = {obj.pk for obj in response.context["cl"].result_list}
    messages = [str(message) for message in response.context["messages"]]
    return pks, messages, [query["sql"] for query in queries.captured_queries]


def _assert_exact(sql: list[str]) -> None:
    for statement in sql:
        assert "UPPER(" not in statement and " LIKE " not in statement, statement


def _cases(w: World) -> list[tuple[str, str, set]]:
    transfer_entry = w.transfer.entry_id
    source_postings = set(Posting.objects.filter(account=w.source).values_list("pk", flat=True))
    return [
        ("accounts_user", "ALICE@Example.com", {w.alice.pk}),  # stored lowercase
        ("accounts_user", str(w.bob.pk), {w.bob.pk}),
        ("accounts_user", "nobody@example.com", set()),
        ("ledger_ledgeraccount", w.source.number, {w.source.pk}),
        ("ledger_ledgeraccount", str(w.destination.pk), {w.destination.pk}),
        ("ledger_ledgeraccount", "Bob@example.com", {w.destination.pk}),
        ("ledger_ledgeraccount", "sys-usd-fun-00", {LedgerAccount.objects.get(number="SYS-USD-FUN-00").pk}),
        ("ledger_ledgeraccount", "000000000000", set()),
        ("ledger_journalentry", str(transfer_entry), {transfer_entry}),
        ("ledger_journalentry", str(w.transfer.pk), {transfer_entry}),
        ("ledger_posting", w.source.number, source_postings),
        ("ledger_posting", str(w.source.pk), source_postings),
        ("ledger_posting", str(transfer_entry), set(Posting.objects.filter(entry_id=transfer_entry).values_list("pk", flat=True))),
        ("ledger_posting", str(w.transfer.pk), set(Posting.objects.filter(entry_id=transfer_entry).values_list("pk", flat=True))),
        ("transactions_transaction", w.destination.number, {w.transfer.pk}),
        ("transactions_transaction", str(w.source.pk), set(Transaction.objects.filter(destination_account=w.source).values_list("pk", flat=True)) | {w.transfer.pk}),
        ("transactions_transaction", str(w.transfer.pk).upper(), {w.transfer.pk}),
        ("audit_auditrecord", str(w.destination.pk), {AuditRecord.objects.get(action=AuditAction.ACCOUNT_OPENED, target_id=str(w.destination.pk)).pk}),
        ("audit_auditrecord", str(w.transfer.pk), {AuditRecord.objects.get(action=AuditAction.TRANSFER_CREATED).pk}),
        ("audit_auditrecord", "bob@example.com", set(AuditRecord.objects.filter(actor=w.bob).values_list("pk", flat=True))),
        ("audit_auditrecord", w.destination.number.lower(), _account_records(w.destination)),
    ]


def _account_records(account) -> set:
    """The account's own records and those of every transaction touching it (the test's world is small)."""
    touching = Transaction.objects.filter(source_account=account) | Transaction.objects.filter(destination_account=account)
    ids = [str(account.pk), *(str(pk) for pk in touching.values_list("pk", flat=True))]
    return set(AuditRecord.objects.filter(target_id__in=ids).values_list("pk", flat=True))


def test_each_list_finds_what_the_term_names_with_exact_sql(superuser_client, world):
    for model, term, expected in _cases(world):
        pks, messages, sql = _search(superuser_client, model, term)
        assert (model, term, pks) == (model, term, expected)
        assert messages == []
        if model not in PREFIX_SEARCHED:
            _assert_exact(sql)


def test_an_email_finds_failed_logins_to_that_address_in_the_audit_trail(superuser_client, world, api_client):
    api_client.post("/api/v1/auth/login", {"email": "Ghost@Example.com", "password": "wrong-password-1"}, format="json")
    failed = AuditRecord.objects.get(action=AuditAction.LOGIN_FAILED)
    assert failed.target_id == "ghost@example.com"
    pks, messages, sql = _search(superuser_client, "audit_auditrecord", "ghost@EXAMPLE.com")
    assert (pks, messages) == ({failed.pk}, [])
    _assert_exact(sql)


@pytest.mark.parametrize(
    "model",
    ["accounts_user", "ledger_ledgeraccount", "ledger_journalentry", "ledger_posting", "transactions_transaction", "audit_auditrecord"],
)
def test_a_term_of_no_known_shape_finds_nothing_and_says_what_works(superuser_client, world, model):
    term = "al" if model in PREFIX_SEARCHED else "alice"  # shorter than a prefix search takes
    pks, messages, sql = _search(superuser_client, model, term)
    assert pks == set()
    assert len(messages) == 1 and messages[0].startswith(f'"{term}" was not searched. Search by ')
    _assert_exact(sql)


# --- PostgreSQL: the plans ------------------------------------------------------------------


@pytest.mark.postgres
def test_every_search_is_planned_on_an_index(superuser_client, world):
    for model, term, _expected in _cases(world):
        response = superuser_client.get(reverse(f"admin:{model}_changelist"), {"q": term})
        plan = changelist_plan(response)
        assert "Seq Scan" not in plan, f"{model} q={term}:\n{plan}"


@pytest.mark.postgres
@pytest.mark.parametrize(
    "model, term, columns",
    [
        ("ledger_posting", "source.number", ["account_id"]),
        ("transactions_transaction", "source.number", ["source_account_id", "destination_account_id"]),
        ("audit_auditrecord", "source.pk", ["target_id"]),
        ("audit_auditrecord", "alice@example.com", ["target_id", "actor_id"]),
    ],
)
def test_searches_by_account_or_actor_filter_on_the_foreign_key_index(superuser_client, world, model, term, columns):
    """The account or user is resolved first: the list filters on the FK column's index, not through a join."""
    term = {"source.number": world.source.number, "source.pk": str(world.source.pk)}.get(term, term)
    response = superuser_client.get(reverse(f"admin:{model}_changelist"), {"q": term})
    plan = changelist_plan(response)
    for column in columns:  # "Index Cond: (account_id = ...)", "Index Cond: ((target_id)::text = ...)"
        assert re.search(rf"Index Cond: \(\(?{column}\)?(::\w+)? = ", plan), plan
    where = str(response.context["cl"].queryset.query).split(" WHERE ")[1]
    assert "accounts_user" not in where and "ledger_ledgeraccount" not in where, where
