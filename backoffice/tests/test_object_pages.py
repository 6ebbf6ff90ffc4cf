"""The account page (balances, open holds, a keyset-paged statement) and the user page (accounts, money, sessions)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import DEFAULT_PASSWORD
from backoffice.object_pages import STATEMENT_ROWS
from transactions.services import deposit_create, transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_account():
    """An account with more postings than a statement page, and an open hold."""
    account = funded_account(amount=100)
    for _ in range(STATEMENT_ROWS + 4):
        deposit_create(actor=account.owner, account=account, amount=100, idempotency_key=new_key())
    other = funded_account(amount=0)
    hold = transfer_create(
        actor=account.owner, source=account, destination=other, amount=700, pin=PIN, idempotency_key=new_key(), hold=True
    ).transaction
    account.refresh_from_db()
    return account, hold


def _section(page: str, element_id: str) -> str:
    return page.split(f'id="{element_id}"', 1)[1].split("</table>", 1)[0]


def test_the_account_page_shows_balances_open_holds_and_a_paged_statement(superuser_client, busy_account):
    account, hold = busy_account
    url = reverse("admin:ledger_ledgeraccount_change", args=[account.pk])
    page = superuser_client.get(url).content.decode()
    assert "25.00 USD" in page and "18.00 USD" in page  # posted, and available after the 7.00 hold
    holds = _section(page, "ledgerx-holds")
    assert str(hold.pk) in holds and "7.00 USD" in holds
    statement = _section(page, "ledgerx-statement")
    assert statement.count("<tr>") == STATEMENT_ROWS + 1  # header + a page
    assert "25.00 USD" in statement.split("</tr>", 2)[1]  # newest first: the balance after the last deposit
    older = page.split('id="ledgerx-statement-older"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
    second = superuser_client.get(older.replace("&amp;", "&")).content.decode()
    rest = _section(second, "ledgerx-statement")
    assert rest.count("<tr>") == 1 + (STATEMENT_ROWS + 5) - STATEMENT_ROWS  # the 5 oldest postings
    assert "1.00 USD" in rest and 'id="ledgerx-statement-older"' not in second
    assert f'href="{reverse("admin:ledgerx_activity")}?q={account.number}"' in page
    assert reverse("admin:accounts_user_change", args=[account.owner_id]) in page


def test_a_bad_statement_cursor_shows_the_newest_page(superuser_client, busy_account):
    account, _hold = busy_account
    url = reverse("admin:ledger_ledgeraccount_change", args=[account.pk])
    page = superuser_client.get(url, {"statement_before": "'; drop"}).content.decode()
    assert _section(page, "ledgerx-statement").count("<tr>") == STATEMENT_ROWS + 1


def test_the_user_page_lists_accounts_recent_transactions_and_sessions(superuser_client, busy_account, api_client):
    account, hold = busy_account
    owner = account.owner
    assert api_client.post("/api/v1/auth/login", {"email": owner.email, "password": DEFAULT_PASSWORD}, format="json").status_code == 200
    page = superuser_client.get(reverse("admin:accounts_user_change", args=[owner.pk])).content.decode()
    accounts = _section(page, "ledgerx-user-accounts-table")
    assert account.number in accounts and "25.00 USD" in accounts
    transactions = _section(page, "ledgerx-user-transactions")
    assert str(hold.pk) in transactions and "Hold" in transactions and "pending" in transactions
    assert transactions.count("<tr>") == 1 + 20
    sessions = _section(page, "ledgerx-user-sessions")
    assert "active" in sessions


_TABLES = ("transactions_transaction", "ledger_posting", "ledger_ledgeraccount", "token_blacklist_outstandingtoken", "audit_auditrecord")


@pytest.mark.postgres
def test_the_page_panels_are_planned_on_indexes(superuser_client, busy_account, api_client):
    account, _hold = busy_account
    api_client.post("/api/v1/auth/login", {"email": account.owner.email, "password": DEFAULT_PASSWORD}, format="json")
    for url in (reverse("admin:ledger_ledgeraccount_change", args=[account.pk]),
                reverse("admin:accounts_user_change", args=[account.owner_id])):
        with CaptureQueriesContext(connection) as queries:
            assert superuser_client.get(url).status_code == 200
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            explained = 0
            for query in queries.captured_queries:
                sql = query["sql"]
                if sql.startswith("SELECT") and any(f'"{table}"' in sql for table in _TABLES):
                    cursor.execute("EXPLAIN " + sql)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    assert "Seq Scan" not in plan, f"{sql}\n{plan}"
                    explained += 1
            assert explained >= 2
        if "ledgeraccount" in url:
            holds = [q["sql"] for q in queries.captured_queries if "\"status\" = 'pending'" in q["sql"] and "expires_at" in q["sql"]]
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN " + holds[0])
                assert "txn_account_holds_idx" in "\n".join(row[0] for row in cursor.fetchall())
