"""CSV export of a filtered list: the rows on screen's filters and search, streamed, capped, audited."""

import csv
import io

import pytest
from django.urls import reverse

from audit.exports import cell_safe
from audit.models import AuditAction, AuditRecord
from ledger.services.customer_accounts import account_freeze
from transactions.tests.helpers import funded_account

pytestmark = pytest.mark.django_db


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_an_export_has_the_lists_filters_and_search_and_is_audited(superuser_client, admin_user):
    frozen, active = funded_account(amount=1250), funded_account(amount=300)
    account_freeze(actor=admin_user, account=frozen, reason="check")
    url = reverse("admin:ledger_ledgeraccount_export")
    rows = _csv(superuser_client.get(url, {"status__exact": "frozen"}))
    assert rows[0] == ["Number", "Owner", "Currency", "Kind", "Status", "Posted", "Pending (holds)", "Available", "Created at"]
    assert [row[0] for row in rows[1:]] == [frozen.number]
    assert rows[1][4:6] == ["Frozen", "12.50 USD"]
    record = AuditRecord.objects.get(action=AuditAction.ADMIN_EXPORT)
    assert record.actor == admin_user and record.target_id == "ledger.ledgeraccount"
    assert record.data == {"list": "ledger.ledgeraccount", "query": {"status__exact": "frozen"}, "rows": 1, "max_rows": 10_000}
    rows = _csv(superuser_client.get(url, {"q": active.number}))
    assert [row[0] for row in rows[1:]] == [active.number]


def test_the_export_is_capped(superuser_client, monkeypatch):
    monkeypatch.setattr("audit.exports.EXPORT_MAX_ROWS", 2)
    for _ in range(3):
        funded_account(amount=100)
    response = superuser_client.get(reverse("admin:accounts_user_export"))
    assert len(_csv(response)) == 1 + 2 and response["X-LedgerX-Export-Rows"] == "2"


def test_the_list_has_the_button_with_its_filters(superuser_client):
    page = superuser_client.get(reverse("admin:transactions_transaction_changelist"), {"type__exact": "deposit"}).content.decode()
    assert f'href="{reverse("admin:transactions_transaction_export")}?type__exact=deposit" id="ledgerx-export-csv"' in page


def test_an_export_is_refused_without_the_view_permission_and_for_a_lookup_the_list_does_not_offer(superuser_client):
    from django.test import Client

    from accounts.tests.factories import UserFactory

    other = Client()
    other.force_login(UserFactory(is_staff=True))
    assert other.get(reverse("admin:accounts_user_export")).status_code == 403
    response = superuser_client.get(reverse("admin:accounts_user_export"), {"password__startswith": "p"})
    assert response.status_code in (302, 400) and not AuditRecord.objects.filter(action=AuditAction.ADMIN_EXPORT).exists()


def test_formulas_are_defused_but_negative_amounts_stay_numbers():
    assert cell_safe("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert cell_safe("@SUM(A1)") == "'@SUM(A1)" and cell_safe("-cmd|' /C calc'!A0").startswith("'")
    assert cell_safe("-12.50 USD") == "-12.50 USD" and cell_safe(None) == ""


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    body = response.content
    assert body[:4] == b"\x00\x00\x01\x00" and len(body) == 6 + 16 + 40 + 16 * 16 * 4 + 64


def test_lists_are_titled_by_what_they_list(superuser_client):
    page = superuser_client.get(reverse("admin:ledger_ledgeraccount_changelist")).content.decode()
    assert "<h1>Ledger accounts</h1>" in page and "Select ledger account to" not in page
    assert "<title>Ledger accounts | LedgerX back office</title>" in page
