"""The dashboard: totals (deposits positive), daily volume and counts with axes for 7/30/90 days,
failing webhook endpoints, pending approvals and recent back-office actions as links."""

import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.services import transaction_reverse_requested
from audit.services import verification_record
from events.models import WebhookEndpoint
from ledger.services import account_freeze
from transactions.services import transaction_reverse, transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = pytest.mark.django_db
URL = reverse("admin:audit_dashboard_changelist")


@pytest.fixture
def books(admin_user, settings):
    settings.FOUR_EYES_AMOUNT = {"USD": 5000}
    source = funded_account(amount=10_000)
    destination = funded_account(amount=0)
    funded_account(amount=250_000, currency="NGN")
    transfer = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=3000, pin=PIN, idempotency_key=new_key()
    ).transaction
    transfer_create(
        actor=source.owner, source=source, destination=destination, amount=700, pin=PIN, idempotency_key=new_key(), hold=True
    )
    big = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=6000, pin=PIN, idempotency_key=new_key()
    ).transaction
    transaction_reverse(actor=admin_user, transaction=transfer, reason="wrong payee")
    approval = transaction_reverse_requested(actor=admin_user, transaction=big, reason="disputed")
    account_freeze(actor=admin_user, account=destination, reason="fraud ring")
    verification_record(kind="ledger", ok=False, summary="account X: stored 5 != postings 4")
    endpoint = WebhookEndpoint.objects.create(
        owner=source.owner, url="https://hooks.example.com/ledgerx", secret_nonce="n", failing_since=timezone.now()
    )
    return {"source": source, "destination": destination, "transfer": transfer, "approval": approval, "endpoint": endpoint}


def _block(response, name):
    return response.context["by_name"][name]


def test_totals_show_deposits_positive_and_customer_money_from_the_system_accounts(superuser_client, books):
    response = superuser_client.get(URL)
    totals = {row["currency"]: row for row in _block(response, "totals")["rows"]}
    assert totals["USD"] == {
        "currency": "USD", "deposits": "100.00 USD", "withdrawals": "0.00 USD", "customer": "100.00 USD",
        "holds": "7.00 USD", "holds_count": 1,
    }
    assert (totals["NGN"]["deposits"], totals["EUR"]["customer"]) == ("2,500.00 NGN", "0.00 EUR")


def test_volume_and_counts_per_day_with_axes_for_the_chosen_range(superuser_client, books):
    response = superuser_client.get(URL)
    volume = _block(response, "volume")
    assert volume["days"] == 30
    charts = {chart["currency"]: chart for chart in volume["charts"]}
    # Deposits (100 USD, 2500 NGN) and both transfers (30 reversed since, 60) are volume; the reversal and the hold are not.
    assert charts["USD"]["total"] == "190.00 USD" and charts["NGN"]["total"] == "2,500.00 NGN"
    assert volume["count"] == 4
    page = response.content.decode()
    count_chart = page.split('id="ledgerx-count-chart"', 1)[1].split("</svg>", 1)[0]
    assert count_chart.count("<rect") == 30 and "day (UTC)" in count_chart and ">transactions</text>" in count_chart
    assert timezone.now().strftime("%m-%d") in count_chart  # today's date under the x axis
    assert re.search(r'class="ylabel">5</text>', count_chart)  # the y axis ends on a round number at or above the peak (4 today)
    usd = page.split('id="ledgerx-volume-USD"', 1)[1].split("</svg>", 1)[0]
    assert "200.00 USD</text>" in usd  # the y axis's top label, in money
    assert "cdn" not in page.lower() and "<script src=\"http" not in page
    for days in (7, 90):
        response = superuser_client.get(URL, {"days": days})
        assert _block(response, "volume")["days"] == days
        assert response.content.decode().split('id="ledgerx-count-chart"', 1)[1].split("</svg>", 1)[0].count("<rect") == days
    assert _block(superuser_client.get(URL, {"days": "365"}), "volume")["days"] == 30


def test_pending_approvals_failing_webhooks_and_recent_actions_as_links(superuser_client, books, admin_user):
    response = superuser_client.get(URL)
    approvals = _block(response, "approvals")
    assert approvals["count"] == 1 and [row.pk for row in approvals["rows"]] == [books["approval"].pk]
    assert [endpoint.pk for endpoint in _block(response, "webhooks")["rows"]] == [books["endpoint"].pk]
    rows = _block(response, "recent_actions")["rows"]
    assert [row["action"] for row in rows[:3]] == ["Account Frozen", "Approval Requested", "Transaction Reversed"]
    frozen = rows[0]
    destination = books["destination"]
    assert destination.number in frozen["target"] and frozen["now"] == "frozen" and frozen["reason"] == "fraud ring"
    assert reverse("admin:ledger_ledgeraccount_change", args=[destination.pk]) in frozen["target"]
    assert admin_user.email in frozen["actor"]
    page = response.content.decode()
    assert "hooks.example.com" in page and reverse("admin:approvals_approvalrequest_change", args=[books["approval"].pk]) in page
    assert "FAILED" in page and "never run" in page


def test_dashboard_shows_the_last_verify_audit_run(superuser_client):
    call_command("verify_audit", stdout=open("/dev/null", "w"))
    runs = {item["kind"]: item["run"] for item in _block(superuser_client.get(URL), "verifications")["runs"]}
    assert runs["audit"].ok is True and runs["ledger"] is None


def test_admin_index_links_the_dashboard_for_staff_who_may_see_it(superuser_client):
    page = superuser_client.get(reverse("admin:index")).content.decode()
    assert f'href="{URL}"' in page and 'id="ledgerx-dashboard-link"' in page


def test_verification_record_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="unknown verification kind 'ledgr'"):
        verification_record(kind="ledgr", ok=True, summary="x")


@pytest.mark.postgres
def test_every_dashboard_query_but_the_webhook_endpoints_is_planned_on_an_index(superuser_client, books):
    with CaptureQueriesContext(connection) as queries:
        assert superuser_client.get(URL, {"days": 90}).status_code == 200
    explained = 0
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in queries.captured_queries:
            sql = query["sql"]
            if not sql.startswith("SELECT") or "django_session" in sql or '"events_webhookendpoint"' in sql:
                continue
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan" not in plan, f"{sql}\n{plan}"
            explained += 1
    assert explained >= 10
