"""Activity timelines: audit records and money merged newest first, folded per transaction, paged by keyset."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import AdminFactory
from audit.models import AuditRecord
from audit.services import audit_record
from backoffice.timeline import Cursor, account_timeline, timeline_for, timeline_page, user_timeline
from ledger.services import account_freeze
from ledgerx.context import request_id_var
from transactions.services import transaction_reverse, transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = pytest.mark.django_db
URL = reverse("admin:ledgerx_activity")


@pytest.fixture
def world():
    officer = AdminFactory(email="officer@example.com")
    source, destination = funded_account(amount=5000), funded_account(amount=0)
    token = request_id_var.set("req-transfer-1")
    try:
        transfer = transfer_create(
            actor=source.owner, source=source, destination=destination, amount=1200, pin=PIN, idempotency_key=new_key()
        ).transaction
    finally:
        request_id_var.reset(token)
    account_freeze(actor=officer, account=destination, reason="sanctions list match")
    reversal = transaction_reverse(actor=officer, transaction=transfer, reason="sent in error")
    return {"officer": officer, "source": source, "destination": destination, "transfer": transfer, "reversal": reversal}


def _rows(client, term, **params):
    response = client.get(URL, {"q": term, **params})
    assert response.status_code == 200
    return response, response.context["page"].rows if response.context["page"] else None


def test_an_account_timeline_merges_its_records_and_money_newest_first(superuser_client, world):
    response, rows = _rows(superuser_client, world["destination"].number)
    assert [(row.kind, row.what, row.amount, row.balance_after) for row in rows] == [
        ("money", "Reversal", "-12.00 USD", "0.00 USD"),
        ("audit", "Account Frozen", "", ""),
        ("money", "Transfer", "12.00 USD", "12.00 USD"),
        ("audit", "Account Opened", "", ""),
    ]
    reversal_row, frozen, transfer_row, _opened = rows
    assert frozen.reason == "sanctions list match" and "officer@example.com" in frozen.actor
    # The transfer's own record gives actor and request id; its reversal is folded into its row.
    assert world["source"].owner.email in transfer_row.actor and transfer_row.request_id == "req-transfer-1"
    assert transfer_row.reason == "reversal: sent in error"
    assert str(world["reversal"].pk) in " ".join(transfer_row.details)
    assert reversal_row.reason == "sent in error" and "officer@example.com" in reversal_row.actor
    page = response.content.decode()
    for url in (
        reverse("admin:transactions_transaction_change", args=[world["transfer"].pk]),
        reverse("admin:transactions_transaction_change", args=[world["reversal"].pk]),
        reverse("admin:ledger_ledgeraccount_change", args=[world["source"].pk]),
        reverse("admin:accounts_user_change", args=[world["officer"].pk]),
        f'{URL}?q=req-transfer-1',
    ):
        assert f'href="{url}"' in page, url


def test_the_original_transactions_timeline_shows_its_reversal(superuser_client, world):
    _response, rows = _rows(superuser_client, str(world["transfer"].pk).upper())
    assert [(row.what, row.status) for row in rows] == [("Reversal", "committed"), ("Transfer", "reversed")]
    assert rows[1].reason == "reversal: sent in error"
    # From the reversal's id, the same two rows.
    _response, rows = _rows(superuser_client, str(world["reversal"].pk))
    assert [row.what for row in rows] == ["Reversal", "Transfer"]


def test_a_user_timeline_by_email_and_a_request_timeline(superuser_client, world):
    _response, rows = _rows(superuser_client, "OFFICER@example.com")
    # The officer's freeze (as actor) and the reversal they made (money of none of their accounts: an audit row).
    assert [row.what for row in rows] == ["Transaction Reversed", "Account Frozen"]
    owner = world["source"].owner
    _response, rows = _rows(superuser_client, owner.email)
    whats = [row.what for row in rows]
    assert whats[:3] == ["Reversal", "Transfer", "Deposit"] and "Pin Set" in whats  # money of their account, folded
    assert sum(1 for row in rows if row.target_id == str(world["transfer"].pk)) == 1  # the record is in the money row
    _response, rows = _rows(superuser_client, "req-transfer-1")
    assert [(row.what, row.target_id) for row in rows] == [("Transfer Created", str(world["transfer"].pk))]


def test_keyset_pages_cover_the_timeline_once_in_order(world):
    account = world["source"]
    for index in range(7):
        audit_record(actor=world["officer"], action="admin.change", target_type="ledger_account", target_id=account.pk,
                     data={"changed": ["name"], "old": {"name": ""}, "new": {"name": f"n{index}"}})
    timeline = account_timeline(account)
    whole = timeline_page(timeline, limit=1000).rows
    seen, cursor = [], None
    while True:
        page = timeline_page(timeline, cursor=cursor, limit=3)
        seen.extend(page.rows)
        assert len(page.rows) <= 3
        if page.next_cursor is None:
            break
        cursor = Cursor.decode(page.next_cursor)
    assert [row.key for row in seen] == [row.key for row in whole]
    assert len(whole) == 7 + 4  # the edits, opened, deposit, transfer, reversal
    assert [row.key for row in whole] == sorted((row.key for row in whole), reverse=True)


def test_older_link_and_a_bad_cursor(superuser_client, world):
    response, rows = _rows(superuser_client, world["destination"].number)
    assert response.context["page"].next_cursor is None
    response, rows = _rows(superuser_client, world["destination"].number, after="not-a-cursor")
    assert len(rows) == 4
    assert "no longer valid" in " ".join(str(m) for m in response.context["messages"])
    response, rows = _rows(superuser_client, "nobody-like-this@example.com")
    assert rows is None and "Nothing found" in " ".join(str(m) for m in response.context["messages"])


@pytest.mark.parametrize("model, key", [("ledger_ledgeraccount", "destination"), ("accounts_user", "owner"), ("transactions_transaction", "transfer")])
def test_history_links_open_the_timeline(superuser_client, world, model, key):
    obj = world["destination"].owner if key == "owner" else world[key]
    response = superuser_client.get(reverse(f"admin:{model}_history", args=[obj.pk]))
    assert response.status_code == 302
    response = superuser_client.get(response["Location"])
    assert response.context["timeline"].subject.pk == obj.pk


def test_compliance_may_read_timelines_a_plain_staff_member_may_not(compliance_client, world, client):
    assert compliance_client.get(URL, {"q": world["source"].number}).status_code == 200
    from accounts.tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True))
    assert client.get(URL, {"q": world["source"].number}).status_code == 403


def test_timeline_for_resolves_each_shape(world):
    assert timeline_for(world["source"].number.lower()).kind == "account"
    assert timeline_for(str(world["source"].pk)).kind == "account"
    assert timeline_for(str(world["officer"].pk)).kind == "user"
    assert timeline_for("some request id") is None  # spaces: not a request id
    assert user_timeline(world["officer"]).kind == "user"


# --- PostgreSQL: every query a timeline page runs is planned on an index ------------------------

_TABLES = ("audit_auditrecord", "transactions_transaction", "ledger_posting", "ledger_ledgeraccount", "accounts_user", "approvals_approvalrequest")


def _plans(client, term, **params) -> list[tuple[str, str]]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL, {"q": term, **params}).status_code == 200
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in queries.captured_queries:
            sql = query["sql"]
            if sql.startswith("SELECT") and any(f'"{table}"' in sql for table in _TABLES):
                cursor.execute("EXPLAIN " + sql)
                plans.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
    return plans


@pytest.mark.postgres
def test_every_timeline_query_is_planned_on_an_index(superuser_client, world):
    older = Cursor(world["reversal"].created_at, 1, str(world["reversal"].pk)).encode()
    terms = [
        (world["destination"].number, {}),
        (world["destination"].number, {"after": older}),
        (world["source"].owner.email, {}),
        (str(world["transfer"].pk), {}),
        ("req-transfer-1", {}),
    ]
    for term, params in terms:
        plans = _plans(superuser_client, term, **params)
        assert plans
        for sql, plan in plans:
            assert "Seq Scan" not in plan, f"{term}: {sql}\n{plan}"
    request_plan = [plan for sql, plan in _plans(superuser_client, "req-transfer-1") if "request_id" in sql]
    assert request_plan and re.search(r"audit_request_idx", request_plan[0]), request_plan
