import pytest
from django.core.management import call_command
from django.urls import reverse

from audit.services import verification_record
from ledger.services import account_freeze
from transactions.services import transaction_reverse, transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = pytest.mark.django_db
URL = reverse("admin:audit_dashboard_changelist")


def test_dashboard_shows_totals_chart_holds_recent_actions_and_verifications(superuser_client, admin_user):
    source = funded_account(amount=10_000)
    destination = funded_account(amount=0)
    funded_account(amount=250_000, currency="NGN")
    transfer = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=3000, pin=PIN, idempotency_key=new_key()
    ).transaction
    transfer_create(
        actor=source.owner, source=source, destination=destination, amount=700, pin=PIN, idempotency_key=new_key(), hold=True
    )
    transaction_reverse(actor=admin_user, transaction=transfer, reason="wrong payee")
    account_freeze(actor=admin_user, account=destination, reason="fraud ring")
    verification_record(kind="ledger", ok=False, summary="account X: stored 5 != postings 4")

    response = superuser_client.get(URL)
    assert response.status_code == 200
    totals = {row["currency"]: row for row in response.context["totals"]}
    assert totals["USD"] == {
        "currency": "USD", "customer": "100.00 USD", "funding": "-100.00 USD",
        "payouts": "0.00 USD", "holds": "7.00 USD", "holds_count": 1,
    }
    assert (totals["NGN"]["customer"], totals["NGN"]["funding"]) == ("2,500.00 NGN", "-2,500.00 NGN")
    assert (totals["EUR"]["customer"], totals["GBP"]["holds_count"]) == ("0.00 EUR", 0)
    # Deposits (100 USD, 2500 NGN) and the reversed transfer (30 USD) count as volume; reversals do not.
    charts = {chart["currency"]: chart for chart in response.context["charts"]}
    assert charts["USD"]["total"] == "130.00 USD"
    assert charts["NGN"]["total"] == "2,500.00 NGN"
    assert response.context["transactions_30d"] == 3
    page = response.content.decode()
    assert page.count("<svg class=\"ledgerx-chart\"") == 4 and "cdn" not in page.lower() and "<script src=\"http" not in page
    assert [row["reason"] for row in response.context["recent"]["reversals"]] == ["wrong payee"]
    assert [row["reason"] for row in response.context["recent"]["freezes"]] == ["fraud ring"]
    assert response.context["recent"]["suspensions"] == []
    verifications = {item["kind"]: item["run"] for item in response.context["verifications"]}
    assert verifications["Audit chain"] is None
    assert (verifications["Ledger invariants"].ok, verifications["Ledger invariants"].summary) == (
        False, "account X: stored 5 != postings 4"
    )
    assert "FAILED" in page and "never run" in page


def test_dashboard_shows_the_last_verify_audit_run(superuser_client):
    call_command("verify_audit", stdout=open("/dev/null", "w"))
    response = superuser_client.get(URL)
    run = {item["kind"]: item["run"] for item in response.context["verifications"]}["Audit chain"]
    assert run.ok is True
    assert "passed" in response.content.decode()


def test_admin_index_links_the_dashboard_for_staff_who_may_see_it(superuser_client):
    page = superuser_client.get(reverse("admin:index")).content.decode()
    assert f'href="{URL}"' in page and 'id="ledgerx-dashboard-link"' in page


def test_verification_record_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="unknown verification kind 'ledgr'"):
        verification_record(kind="ledgr", ok=True, summary="x")
