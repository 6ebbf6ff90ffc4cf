"""Rates in the Django admin and from CSV (both through rate_set, audited), and the dashboard's FX block."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.tests.factories import AdminFactory
from audit.models import AuditRecord
from fx.models import FxRate
from fx.tests.helpers import customer_with_usd_and_ngn, quote_for, usd_ngn_rate
from transactions.services.money import conversion_create
from transactions.tests.helpers import PIN, new_key
from transactions.verification import books_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = AdminFactory()
    client.force_login(admin)
    return client, admin


def test_an_admin_sets_a_rate_in_the_back_office_audited(admin_client):
    client, admin = admin_client
    response = client.post(
        "/admin/fx/fxrate/add/", {"base": "usd", "quote": "NGN", "mid": "1532.75", "spread_bps": "50"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rate = FxRate.objects.get()
    assert (rate.base, rate.quote, str(rate.mid.normalize()), rate.spread_bps, rate.updated_by) == ("USD", "NGN", "1532.75", 50, admin)
    change = client.post(f"/admin/fx/fxrate/{rate.pk}/change/", {"base": "USD", "quote": "NGN", "mid": "1540", "spread_bps": "60"})
    assert change.status_code == 302
    records = AuditRecord.objects.filter(action="fx.rate_set").order_by("at")
    assert [(r.actor_id, r.data["via"], r.data["new"]["mid"]) for r in records] == [(admin.pk, "admin", "1532.75"), (admin.pk, "admin", "1540")]
    assert client.get("/admin/fx/fxrate/").status_code == 200


def test_a_bad_rate_in_the_back_office_is_a_form_error(admin_client):
    client, _admin = admin_client
    response = client.post("/admin/fx/fxrate/add/", {"base": "USD", "quote": "NGN", "mid": "-3", "spread_bps": "50"})
    assert response.status_code == 200
    assert "Must be between" in response.content.decode()
    assert FxRate.objects.count() == 0


def test_fx_rates_load_sets_every_row_or_none(tmp_path):
    admin = AdminFactory()
    good = tmp_path / "rates.csv"
    good.write_text("base,quote,mid,spread_bps\nUSD,NGN,1500,100\nGBP,USD,1.27,25\n")
    call_command("fx_rates_load", str(good), "--actor", admin.email)
    assert sorted(FxRate.objects.values_list("base", "quote", "spread_bps")) == [("GBP", "USD", 25), ("USD", "NGN", 100)]
    assert AuditRecord.objects.filter(action="fx.rate_set", data__via="csv", actor=admin).count() == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("base,quote,mid,spread_bps\nEUR,USD,1.08,10\nUSD,NGN,zero,100\n")
    with pytest.raises(CommandError, match="Line 3"):
        call_command("fx_rates_load", str(bad))
    assert not FxRate.objects.filter(base="EUR").exists()


def test_the_dashboard_shows_the_pools_and_the_spread(admin_client):
    client, _admin = admin_client
    usd_ngn_rate()  # 1500, 100 bps: 10.00 USD -> 14,850.00 NGN, 150.00 NGN kept
    owner, usd, ngn = customer_with_usd_and_ngn()
    conversion_create(actor=owner, quote_id=quote_for(owner).pk, source=usd, destination=ngn, pin=PIN, idempotency_key=new_key())
    page = client.get("/admin/audit/dashboard/").content.decode()
    block = page[page.index('id="ledgerx-fx-pools"'):]
    block = block[: block.index("</table>")]
    assert "10.00 USD" in block
    assert "-14,850.00 NGN" in block
    assert "150.00 NGN" in block
    assert [result.name for result in books_verify() if not result.ok] == []


def test_verify_ledger_catches_a_conversion_that_does_not_match_its_entry():
    usd_ngn_rate()
    owner, usd, ngn = customer_with_usd_and_ngn()
    outcome = conversion_create(actor=owner, quote_id=quote_for(owner).pk, source=usd, destination=ngn, pin=PIN, idempotency_key=new_key())
    table = outcome.transaction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET destination_amount = destination_amount + 1 WHERE id = %s",
                       [outcome.transaction._meta.pk.get_db_prep_value(outcome.transaction.pk, connection)])
    failed = [result.name for result in books_verify() if not result.ok]
    assert failed == ["every conversion's entry moves its recorded amounts on its two accounts"]


def test_a_conversion_page_shows_both_legs_and_the_rate(admin_client):
    client, _admin = admin_client
    usd_ngn_rate()
    owner, usd, ngn = customer_with_usd_and_ngn()
    quote = quote_for(owner)
    txn = conversion_create(actor=owner, quote_id=quote.pk, source=usd, destination=ngn, pin=PIN, idempotency_key=new_key()).transaction
    page = client.get(f"/admin/transactions/transaction/{txn.pk}/change/").content.decode()
    assert f"10.00 USD -&gt; 14,850.00 NGN at 1485 (quote {quote.pk})" in page
    assert client.get(f"/admin/fx/fxquote/{quote.pk}/change/").status_code == 200
    assert client.get("/admin/fx/fxquote/").status_code == 200
