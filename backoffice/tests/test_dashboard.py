"""The dashboard: totals (deposits positive), daily volume and counts with axes for 7/30/90 days,
failing webhook endpoints, pending approvals and recent back-office actions as links."""

import re
import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.services import transaction_reverse_requested
from backoffice.models import VolumeRollup
from audit.services import verification_record
from events.models import WebhookEndpoint
from ledger.services import account_freeze, account_unfreeze
from transactions.models import Transaction
from transactions.services import hold_commit, hold_void, transaction_reverse, transfer_create
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
    # Equal round steps up to the peak (4 today).
    assert re.findall(r'class="ylabel">([^<]*)</text>', count_chart) == ["0", "1", "2", "3", "4"]
    usd = page.split('id="ledgerx-volume-USD"', 1)[1].split("</svg>", 1)[0]
    assert re.findall(r'class="ylabel">([^<]*)</text>', usd) == ["0", "50", "100", "150", "200"]  # 190.00 USD today
    assert "190.00 USD</title>" in usd  # the bar's own value, in full
    assert 'id="ledgerx-volume-EUR-none"' in page and "No EUR moved in the last 30 days." in page
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
def test_every_dashboard_query_is_planned_on_an_index(superuser_client, books):
    with CaptureQueriesContext(connection) as queries:
        assert superuser_client.get(URL, {"days": 90}).status_code == 200
    explained = 0
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in queries.captured_queries:
            sql = query["sql"]
            if not sql.startswith("SELECT") or "django_session" in sql or "pg_stat_activity" in sql:
                continue
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan" not in plan, f"{sql}\n{plan}"
            explained += 1
    assert explained >= 10


def test_axis_labels_fit_and_today_is_labelled_once():
    from datetime import date, timedelta

    from backoffice.dashboard.charts import bar_chart, compact

    assert [compact(v) for v in (0, 12.5, 2500, 1_500_000, 2_000_000_000)] == ["0", "12.5", "2.5k", "1.5M", "2G"]
    days = [date(2026, 9, 5) + timedelta(days=n) for n in range(90)]
    svg = bar_chart(chart_id="c", title="t", days=days, values={days[-1]: 3}, y_label="n", fmt=str)
    labels = re.findall(r'class="xlabel">([^<]*)</text>', svg)
    assert labels[-1] == "12-03" and labels.count("12-03") == 1 and "12-02" not in labels


# --- The daily volume: a settled rollup carried forward, plus the live tail ------------------------------


def _recount(days: int) -> dict:
    """The volume counted from the rows one by one, independently of ``backoffice.dashboard.volume``."""
    from backoffice.dashboard.volume import range_start

    figures: dict = {}
    for txn in Transaction.objects.filter(created_at__gte=range_start(days)):
        if txn.type in ("deposit", "withdrawal", "transfer") and txn.status in ("committed", "reversed"):
            key = (txn.currency, txn.created_at.date())
            total, count = figures.get(key, (0, 0))
            figures[key] = (total + txn.amount, count + 1)
    return figures


def _volume_figures(client, days: int) -> tuple[dict, int]:
    volume = _block(client.get(URL, {"days": days}), "volume")
    return {chart["currency"]: chart["total"] for chart in volume["charts"]}, volume["count"]


@pytest.mark.parametrize("settle_after_minutes", [0, 60])
def test_volume_equals_a_recount_as_the_rollup_settles_holds_commits_and_reversals(
    superuser_client, books, admin_user, monkeypatch, settle_after_minutes
):
    """With everything settled at once (0) or everything still in the live tail (60 minutes), every view
    shows the recount of that moment: a hold committed after it was settled as pending comes in, a void
    and a reversal change nothing, new transfers come in."""
    from backoffice.dashboard import volume

    monkeypatch.setattr(volume, "SETTLE_AFTER", timedelta(minutes=settle_after_minutes))
    source, destination = books["source"], books["destination"]
    account_unfreeze(actor=admin_user, account=destination, reason="cleared")
    assert volume.daily_volume(30, kept_days=90) == _recount(30)
    rollup = VolumeRollup.objects.get()
    hold = Transaction.objects.get(status="pending")
    if settle_after_minutes == 0:
        assert rollup.pending == [str(hold.pk)]  # settled while pending: looked up again on every view
    else:
        assert rollup.days == [] and rollup.pending == []  # nothing settled yet: all in the tail

    hold_commit(actor=source.owner, transaction=hold)
    second = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=1100, pin=PIN, idempotency_key=new_key(), hold=True
    ).transaction
    hold_void(actor=source.owner, transaction=second)
    third = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=900, pin=PIN, idempotency_key=new_key()
    ).transaction
    transaction_reverse(actor=admin_user, transaction=third, reason="duplicate")
    expected = _recount(90)
    usd = sum(total for (currency, _day), (total, _count) in expected.items() if currency == "USD")
    assert usd == 10_000 + 3000 + 700 + 6000 + 900  # the deposit, both transfers, the committed hold, the reversed one
    for days in (7, 30, 90):
        assert volume.daily_volume(days, kept_days=90) == _recount(days)
    totals, count = _volume_figures(superuser_client, 90)
    assert totals["USD"] == "206.00 USD" and count == sum(count for _total, count in expected.values()) == 6
    assert VolumeRollup.objects.get().pending == []


def test_volume_rebuilt_from_the_rows_equals_the_one_carried_forward_and_lives_in_the_database(
    superuser_client, books, monkeypatch
):
    from backoffice.dashboard import volume

    monkeypatch.setattr(volume, "SETTLE_AFTER", timedelta(0))
    carried = _volume_figures(superuser_client, 30)
    cache.clear()  # nothing of it is in the cache
    assert _volume_figures(superuser_client, 30) == carried
    VolumeRollup.objects.all().delete()
    assert _volume_figures(superuser_client, 30) == carried == ({"EUR": "0.00 EUR", "GBP": "0.00 GBP", "NGN": "2,500.00 NGN", "USD": "190.00 USD"}, 4)


@pytest.mark.postgres
def test_an_open_transaction_holds_the_settled_moment_back(monkeypatch):
    """A row can be written with a booking time older than the settle margin while a transaction is open:
    the settled moment stays before the oldest open transaction's start."""
    from backoffice.dashboard import volume

    monkeypatch.setattr(volume, "SETTLE_AFTER", timedelta(0))
    opened, release = threading.Event(), threading.Event()
    started = {}

    def hold_a_transaction():
        from django.db import connection as own

        with own.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT now()")
            started["at"] = cursor.fetchone()[0]
            opened.set()
            release.wait(10)
            cursor.execute("ROLLBACK")
        own.close()

    worker = threading.Thread(target=hold_a_transaction)
    worker.start()
    try:
        assert opened.wait(10)
        assert volume.settled_moment() <= started["at"]
    finally:
        release.set()
        worker.join()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_view_that_finds_the_rollup_locked_carries_it_forward_without_storing(books, monkeypatch):
    from backoffice.dashboard import volume

    monkeypatch.setattr(volume, "SETTLE_AFTER", timedelta(0))
    volume.daily_volume(30, kept_days=90)
    stored = VolumeRollup.objects.get()
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        from django.db import connection as own, transaction

        with transaction.atomic():
            VolumeRollup.objects.select_for_update().get()
            locked.set()
            release.wait(10)
        own.close()

    worker = threading.Thread(target=hold_the_row)
    worker.start()
    try:
        assert locked.wait(10)
        assert volume.daily_volume(30, kept_days=90) == _recount(30)
        assert VolumeRollup.objects.get().settled == stored.settled  # not stored: the other view holds it
    finally:
        release.set()
        worker.join()
    assert volume.daily_volume(30, kept_days=90) == _recount(30)
    assert VolumeRollup.objects.get().settled > stored.settled
