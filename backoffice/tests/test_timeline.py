"""Activity timelines: audit records and money merged newest first, folded per transaction, paged by keyset."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import AdminFactory
from audit.services import audit_record
from backoffice.timeline import Cursor, account_timeline, timeline_for, timeline_page, user_timeline
from ledger.services import account_freeze
from ledgerx.context import request_id_var
from transactions.models import Transaction
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
        ("money", "Transfer", "+12.00 USD", "12.00 USD"),
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


def _every_page(timeline, limit: int) -> list:
    """The rows of every page of ``timeline``, ``limit`` a page, following the cursors."""
    seen, cursor = [], None
    while True:
        page = timeline_page(timeline, cursor=cursor, limit=limit)
        seen.extend(page.rows)
        assert len(page.rows) <= limit
        if page.next_cursor is None:
            return seen
        cursor = Cursor.decode(page.next_cursor)


def test_keyset_pages_cover_the_timeline_once_in_order(world):
    account = world["source"]
    for index in range(7):
        audit_record(actor=world["officer"], action="admin.change", target_type="ledger_account", target_id=account.pk,
                     data={"changed": ["name"], "old": {"name": ""}, "new": {"name": f"n{index}"}})
    timeline = account_timeline(account)
    whole = timeline_page(timeline, limit=1000).rows
    seen = _every_page(timeline, 3)
    assert [row.key for row in seen] == [row.key for row in whole]
    assert len(whole) == 7 + 4  # the edits, opened, deposit, transfer, reversal
    assert [row.key for row in whole] == sorted((row.key for row in whole), reverse=True)


def test_older_link_and_a_bad_cursor(superuser_client, world):
    response, rows = _rows(superuser_client, world["destination"].number)
    assert response.context["page"].next_cursor is None
    response, rows = _rows(superuser_client, world["destination"].number, after="not-a-cursor")
    assert len(rows) == 4
    assert "no longer valid" in " ".join(str(m) for m in response.context["messages"])
    forged = Cursor(world["reversal"].created_at, 0, "not-a-uuid").encode()  # the audit source's rank, a bad id
    response, rows = _rows(superuser_client, world["destination"].number, after=forged)
    assert len(rows) == 4 and "no longer valid" in " ".join(str(m) for m in response.context["messages"])
    naive = Cursor(world["reversal"].created_at.replace(tzinfo=None), 1, str(world["reversal"].pk)).encode()
    response, rows = _rows(superuser_client, world["destination"].number, after=naive)
    assert len(rows) == 4 and "no longer valid" in " ".join(str(m) for m in response.context["messages"])
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
    assert timeline_for("no-such-request") is None  # a request id no record carries: nothing found
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


def test_an_admin_edit_shows_on_the_accounts_timeline_with_old_and_new_values(superuser_client, world):
    account = world["source"]
    url = reverse("admin:ledger_ledgeraccount_change", args=[account.pk])
    assert superuser_client.post(url, {"name": "Savings"}).status_code == 302
    response, rows = _rows(superuser_client, account.number)
    edit = rows[0]
    assert (edit.kind, edit.what) == ("audit", "Admin Change")
    assert f'account <a href="{url}">{account.number}</a>' == edit.subject
    assert "name:  → Savings" in edit.details[0]


def test_the_request_id_an_api_answer_carried_finds_what_it_did(superuser_client, api_client):
    account = funded_account(amount=0)
    api_client.force_authenticate(account.owner)
    response = api_client.post(
        "/api/v1/deposits", {"account": str(account.pk), "amount": 4200}, format="json",
        HTTP_IDEMPOTENCY_KEY=new_key(), HTTP_X_REQUEST_ID="support-ticket-4711",
    )
    assert response.status_code == 201 and response["X-Request-ID"] == "support-ticket-4711"
    _response, rows = _rows(superuser_client, "support-ticket-4711")
    assert [(row.what, row.target_id, row.request_id) for row in rows] == [
        ("Deposit Created", response.json()["id"], "support-ticket-4711")
    ]
    # The deposit's money row on the account's timeline carries the same request id, as a link.
    _response, rows = _rows(superuser_client, account.number)
    assert rows[0].what == "Deposit" and rows[0].request_id == "support-ticket-4711" and rows[0].amount == "+42.00 USD"


def test_the_audit_trail_list_names_accounts_by_number_and_users_by_email(superuser_client, world):
    page = superuser_client.get(reverse("admin:audit_auditrecord_changelist")).content.decode()
    account = world["destination"]
    assert f'account <a href="{reverse("admin:ledger_ledgeraccount_change", args=[account.pk])}">{account.number}</a>' in page
    owner = world["source"].owner
    assert f'user <a href="{reverse("admin:accounts_user_change", args=[owner.pk])}">{owner.email}</a>' in page


def test_the_admin_index_has_the_activity_search(superuser_client):
    page = superuser_client.get(reverse("admin:index")).content.decode()
    assert f'<form method="get" action="{URL}" id="ledgerx-index-activity-search">' in page


def test_the_original_transactions_page_shows_who_reversed_it_and_why(superuser_client, world):
    page = superuser_client.get(reverse("admin:transactions_transaction_change", args=[world["transfer"].pk])).content.decode()
    panel = page.split('id="ledgerx-transaction-activity"', 1)[1].split("</table>", 1)[0]
    assert "Reversal" in panel and "reversal: sent in error" in panel and "officer@example.com" in panel
    assert str(world["reversal"].pk) in panel


@pytest.fixture
def many_accounts():
    """A user with 25 accounts, money in the oldest one (past any first 20) and between two of their own."""
    from ledger.tests.factories import customer_account

    first = funded_account(amount=4000)
    owner = first.owner
    accounts = [first] + [customer_account(owner=owner) for _ in range(24)]
    own_transfer = transfer_create(
        actor=owner, source=first, destination=accounts[-1], amount=300, pin=PIN, idempotency_key=new_key()
    ).transaction
    stranger = funded_account(amount=900)
    incoming = transfer_create(
        actor=stranger.owner, source=stranger, destination=accounts[1], amount=200, pin=PIN, idempotency_key=new_key()
    ).transaction
    return {"owner": owner, "accounts": accounts, "own_transfer": own_transfer, "incoming": incoming, "stranger": stranger}


def test_a_user_timeline_covers_every_account_they_own(superuser_client, many_accounts):
    owner, accounts = many_accounts["owner"], many_accounts["accounts"]
    _response, rows = _rows(superuser_client, owner.email)
    money = [row.target_id for row in rows if row.kind == "money"]
    deposit = str(Transaction.objects.get(destination_account=accounts[0], type="deposit").pk)
    # The oldest account's deposit, a transfer between two of their accounts (once) and one from a stranger.
    assert money == [str(many_accounts["incoming"].pk), str(many_accounts["own_transfer"].pk), deposit]
    # The stranger's own deposit is not the owner's money.
    assert str(Transaction.objects.get(destination_account=many_accounts["stranger"], type="deposit").pk) not in money


def test_a_user_timelines_keyset_pages_cover_it_once_in_order(many_accounts):
    owner, accounts = many_accounts["owner"], many_accounts["accounts"]
    for index, account in enumerate(accounts[2:12]):
        transfer_create(actor=owner, source=accounts[0], destination=account, amount=10 + index, pin=PIN, idempotency_key=new_key())
    timeline = user_timeline(owner)
    whole = timeline_page(timeline, limit=1000).rows
    seen = _every_page(timeline, 4)
    # Money rows exactly once each, in order (a transaction's records fold into its row only when both are on
    # one page, so the audit rows of small pages may differ from one whole page's).
    money = [row.key for row in seen if row.kind == "money"]
    assert money == [row.key for row in whole if row.kind == "money"] and len(money) == 3 + 10
    assert [row.key for row in seen] == sorted((row.key for row in seen), reverse=True)
    assert len({row.key for row in seen}) == len(seen)


def test_the_user_page_lists_money_of_every_account_and_says_when_it_shows_only_the_newest_accounts(
    superuser_client, many_accounts, settings
):
    from backoffice import object_pages

    owner = many_accounts["owner"]
    page = superuser_client.get(reverse("admin:accounts_user_change", args=[owner.pk])).content.decode()
    transactions = page.split('id="ledgerx-user-transactions"', 1)[1].split("</table>", 1)[0]
    deposit = Transaction.objects.get(destination_account=many_accounts["accounts"][0], type="deposit")
    assert str(deposit.pk) in transactions and str(many_accounts["incoming"].pk) in transactions
    assert 'id="ledgerx-user-accounts-more"' not in page  # 25 accounts: all listed
    object_pages.USER_ACCOUNTS_ROWS, saved = 20, object_pages.USER_ACCOUNTS_ROWS
    try:
        page = superuser_client.get(reverse("admin:accounts_user_change", args=[owner.pk])).content.decode()
    finally:
        object_pages.USER_ACCOUNTS_ROWS = saved
    more = page.split('id="ledgerx-user-accounts-more"', 1)[1].split("</p>", 1)[0]
    assert "The newest 20 accounts." in more
    assert f'{reverse("admin:ledger_ledgeraccount_changelist")}?q={owner.email}' in more
    assert page.split('id="ledgerx-user-accounts-table"', 1)[1].split("</table>", 1)[0].count("<tr>") == 21  # head + 20


@pytest.mark.postgres
def test_a_user_timeline_with_many_accounts_is_one_statement_on_indexes(superuser_client, many_accounts):
    with CaptureQueriesContext(connection) as queries:
        _rows(superuser_client, many_accounts["owner"].email)
    money = [q["sql"] for q in queries.captured_queries if '"transactions_transaction"' in q["sql"]]
    assert sum(1 for sql in money if "CROSS JOIN LATERAL" in sql) == 1
    plans = _plans(superuser_client, many_accounts["owner"].email)
    lateral = [plan for sql, plan in plans if "CROSS JOIN LATERAL" in sql]
    assert lateral and "txn_source_keyset_idx" in lateral[0] and "txn_destination_keyset_idx" in lateral[0]
    for sql, plan in plans:
        assert "Seq Scan" not in plan, f"{sql}\n{plan}"
