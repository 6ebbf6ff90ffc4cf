from datetime import timedelta
from datetime import timezone as dt_timezone

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.tests.factories import AdminFactory, UserFactory
from ledger.models import LedgerAccount
from ledger.tests.factories import customer_account
from transactions.services.money import deposit_create, transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = pytest.mark.django_db


def test_open_account(client_for):
    user = UserFactory()
    response = client_for(user).post("/api/v1/accounts", {"currency": "NGN", "name": "Savings"}, format="json")
    assert response.status_code == 201
    body = response.json()
    account = LedgerAccount.objects.get(owner=user)
    assert body == {
        "id": str(account.pk),
        "number": account.number,
        "name": "Savings",
        "currency": "NGN",
        "status": "active",
        "balance": {"posted": 0, "pending": 0, "available": 0},
        "created_at": body["created_at"],
    }
    assert body["created_at"].endswith("Z")


@pytest.mark.parametrize("payload", [{"currency": "XXX"}, {"currency": 840}, {}, {"currency": "USD", "name": "x" * 101}])
def test_open_account_validation(client_for, payload):
    user = UserFactory()
    response = client_for(user).post("/api/v1/accounts", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not LedgerAccount.objects.filter(owner=user).exists()


def test_requires_authentication(api_client):
    response = api_client.get("/api/v1/accounts")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_list_and_detail_show_only_own_accounts_with_balances(client_for):
    mine = funded_account(amount=700)
    other = funded_account(amount=5)
    client = client_for(mine.owner)
    listing = client.get("/api/v1/accounts").json()
    assert [item["id"] for item in listing["results"]] == [str(mine.pk)]
    assert listing["results"][0]["balance"] == {"posted": 700, "pending": 0, "available": 700}
    assert listing["next"] is None and listing["previous"] is None
    assert client.get(f"/api/v1/accounts/{mine.pk}").json()["balance"]["posted"] == 700
    for path in ("", "/balance", "/entries"):
        response = client.get(f"/api/v1/accounts/{other.pk}{path}")
        assert response.status_code == 404
        assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_the_account_endpoint_answers_from_the_cache_once_read(client_for):
    """A miss reads the row once and caches the account; from then on the endpoint runs no account query."""
    mine = funded_account(amount=700)
    cache.clear()
    client = client_for(mine.owner)
    bodies = []
    for expected_reads in (1, 0):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/v1/accounts/{mine.pk}")
        assert response.status_code == 200
        account_reads = [q["sql"] for q in queries if '"ledger_ledgeraccount"' in q["sql"]]
        assert len(account_reads) == expected_reads, account_reads
        bodies.append(response.json())
    assert bodies[0] == bodies[1] == client.get("/api/v1/accounts").json()["results"][0]
    assert bodies[1]["balance"] == {"posted": 700, "pending": 0, "available": 700}


def test_the_account_list_reads_its_page_once(client_for):
    mine = funded_account(amount=700)
    other = funded_account(owner=mine.owner, amount=40)
    with CaptureQueriesContext(connection) as queries:
        response = client_for(mine.owner).get("/api/v1/accounts")
    assert {body["id"]: body["balance"]["posted"] for body in response.json()["results"]} == {
        str(mine.pk): 700, str(other.pk): 40
    }
    account_reads = [q["sql"] for q in queries if '"ledger_ledgeraccount"' in q["sql"]]
    assert len(account_reads) == 1, account_reads


def test_a_cached_account_is_still_not_found_for_another_user(client_for):
    account = funded_account(amount=5)
    assert client_for(account.owner).get(f"/api/v1/accounts/{account.pk}").status_code == 200  # cached now
    response = client_for(UserFactory()).get(f"/api/v1/accounts/{account.pk}")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


@pytest.mark.django_db(transaction=True)
def test_a_freeze_and_a_rename_show_at_once_on_a_cached_account(client_for, admin_client):
    """Real commits: status and name changes refresh the cached account before their response is sent."""
    account = funded_account(amount=100)

    def owner_view() -> dict:
        return client_for(account.owner).get(f"/api/v1/accounts/{account.pk}").json()

    assert owner_view()["status"] == "active"  # cached now
    response = client_for(AdminFactory()).post(f"/api/v1/admin/accounts/{account.pk}/freeze", {"reason": "KYC review"}, format="json")
    assert response.status_code == 200
    assert owner_view()["status"] == "frozen"
    change_url = reverse("admin:ledger_ledgeraccount_change", args=[account.pk])
    assert admin_client.post(change_url, {"name": "Rent"}).status_code == 302
    body = owner_view()
    assert (body["name"], body["status"], body["balance"]["posted"]) == ("Rent", "frozen", 100)


@pytest.mark.django_db(transaction=True)
def test_balance_reflects_changes_immediately(client_for):
    """Real commits (on_commit runs): the cached balance is refreshed before the writer returns."""
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    client = client_for(source.owner)
    assert client.get(f"/api/v1/accounts/{source.pk}").json()["balance"]["available"] == 1000  # cached now
    transfer_create(
        actor=source.owner, source=source, destination=destination, amount=300, pin=PIN, idempotency_key=new_key(), hold=True
    )
    assert client.get(f"/api/v1/accounts/{source.pk}").json()["balance"] == {"posted": 1000, "pending": 300, "available": 700}


def test_point_in_time_balance(client_for):
    owner = UserFactory()
    account = customer_account(owner=owner)
    deposit_create(actor=owner, account=account, amount=100, idempotency_key=new_key())
    middle = timezone.now()
    deposit_create(actor=owner, account=account, amount=50, idempotency_key=new_key())
    client = client_for(owner)
    url = f"/api/v1/accounts/{account.pk}/balance"
    before_all = (middle - timedelta(days=1)).isoformat()
    assert client.get(url, {"as_of": before_all}).json()["posted"] == 0
    body = client.get(url, {"as_of": middle.isoformat()}).json()
    assert (body["posted"], body["currency"]) == (100, "USD")
    assert client.get(url).json()["posted"] == 150
    naive = client.get(url, {"as_of": middle.replace(tzinfo=None).isoformat()}).json()
    assert naive["posted"] == 100 and naive["as_of"].endswith("Z")  # no offset means UTC
    bad = client.get(url, {"as_of": "yesterday"})
    assert bad.status_code == 400 and list(bad.json()["error"]["fields"]) == ["as_of"]


@pytest.mark.parametrize("offset", [timedelta(hours=16), timedelta(hours=-18), timedelta(hours=23, minutes=59)])
def test_point_in_time_balance_with_any_utc_offset(client_for, offset):
    # PostgreSQL's timestamptz refuses offsets beyond 15:59 (a 500): the instant is queried in UTC.
    owner = UserFactory()
    account = customer_account(owner=owner)
    deposit_create(actor=owner, account=account, amount=100, idempotency_key=new_key())
    middle = timezone.now()
    deposit_create(actor=owner, account=account, amount=50, idempotency_key=new_key())
    local = middle.astimezone(dt_timezone(offset))
    response = client_for(owner).get(f"/api/v1/accounts/{account.pk}/balance", {"as_of": local.isoformat()})
    body = response.json()
    assert (response.status_code, body["posted"], body["currency"]) == (200, 100, "USD")
    assert body["as_of"].endswith("Z") and parse_datetime(body["as_of"]) == middle


@pytest.mark.parametrize(
    "as_of",
    ["yesterday", "2026-02-30T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-01-01T00:00:00+24:00"],
)
def test_point_in_time_balance_refuses_unrepresentable_timestamps(client_for, as_of):
    owner = UserFactory()
    account = customer_account(owner=owner)
    response = client_for(owner).get(f"/api/v1/accounts/{account.pk}/balance", {"as_of": as_of})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"as_of": ["Must be an ISO 8601 timestamp, e.g. 2026-01-31T23:59:59Z."]}


def test_statement_lines_newest_first_with_running_balance(client_for):
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    txn = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=400, pin=PIN, idempotency_key=new_key()
    ).transaction
    client = client_for(source.owner)
    body = client.get(f"/api/v1/accounts/{source.pk}/entries").json()
    lines = [(line["type"], line["amount"], line["balance_after"]) for line in body["results"]]
    assert lines == [("transfer", -400, 600), ("deposit", 1000, 1000)]
    assert body["results"][0]["transaction_id"] == str(txn.pk)
    page = client.get(f"/api/v1/accounts/{source.pk}/entries", {"page_size": 1}).json()
    assert len(page["results"]) == 1 and page["next"]
    second = client.get(page["next"]).json()
    assert [line["amount"] for line in second["results"]] == [1000]


def test_unknown_account_id_is_not_found(client_for):
    client = client_for(UserFactory())
    assert client.get("/api/v1/accounts/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/api/v1/accounts/not-a-uuid").status_code == 404
