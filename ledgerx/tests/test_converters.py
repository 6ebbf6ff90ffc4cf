"""An id works in a path in any case, as it does in a body or a query string."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import UUIDConverter

from accounts.tests.factories import AdminFactory
from ledger.tests.factories import customer_account
from ledgerx.api.converters import CaseInsensitiveUUIDConverter
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = pytest.mark.django_db


def _patterns(resolver=None, prefix=""):
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, route)
        else:
            assert isinstance(entry, URLPattern)
            yield route, entry.pattern.converters


def test_every_uuid_path_parameter_uses_the_case_insensitive_converter():
    uuid_routes = []
    for route, converters in _patterns():
        assert not any(isinstance(c, UUIDConverter) for c in converters.values()), route
        if any(isinstance(c, CaseInsensitiveUUIDConverter) for c in converters.values()):
            uuid_routes.append(route)
    assert len(uuid_routes) == 19  # 3 account, 3 transaction, 1 batch, 7 back-office, 5 events and webhooks paths


def test_uppercase_ids_in_customer_paths(api_client):
    source = funded_account(amount=1000)
    hold = transfer_create(
        actor=source.owner,
        source=source,
        destination=customer_account(),
        amount=5,
        pin=PIN,
        idempotency_key=new_key(),
        hold=True,
    ).transaction
    api_client.force_authenticate(source.owner)
    account_id, hold_id = str(source.pk).upper(), str(hold.pk).upper()
    for suffix in ("", "/entries"):
        upper = api_client.get(f"/api/v1/accounts/{account_id}{suffix}")
        assert (upper.status_code, upper.json()) == (200, api_client.get(f"/api/v1/accounts/{source.pk}{suffix}").json())
    balance = api_client.get(f"/api/v1/accounts/{account_id}/balance")
    assert (balance.status_code, balance.json()["posted"]) == (200, 1000)
    detail = api_client.get(f"/api/v1/transactions/{hold_id}")
    assert (detail.status_code, detail.json()["id"]) == (200, str(hold.pk))
    committed = api_client.post(f"/api/v1/transactions/{hold_id}/commit")
    assert (committed.status_code, committed.json()["status"]) == (200, "committed")


def test_uppercase_ids_in_back_office_paths(api_client):
    account = funded_account(amount=100)
    deposit = account.incoming_transactions.get()
    api_client.force_authenticate(AdminFactory())
    base, reason = "/api/v1/admin", {"reason": "case check"}
    account_id, user_id = str(account.pk).upper(), str(account.owner_id).upper()
    assert api_client.post(f"{base}/accounts/{account_id}/freeze", reason, format="json").json()["status"] == "frozen"
    assert api_client.post(f"{base}/accounts/{account_id}/unfreeze", reason, format="json").json()["status"] == "active"
    assert api_client.post(f"{base}/users/{user_id}/suspend", reason, format="json").json()["status"] == "suspended"
    assert api_client.post(f"{base}/users/{user_id}/reinstate", reason, format="json").json()["status"] == "active"
    reversal = api_client.post(f"{base}/transactions/{str(deposit.pk).upper()}/reverse", reason, format="json")
    assert (reversal.status_code, reversal.json()["reverses"]) == (201, str(deposit.pk))
