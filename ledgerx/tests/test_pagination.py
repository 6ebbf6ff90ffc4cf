"""Every invalid cursor is 404 not_found; a valid position in any spelling pages correctly.

DRF's CursorPagination passed a crafted position straight to the query (500);
the transaction list's own keyset cursors caught too few errors (500).
"""

import base64
import json
from datetime import timedelta, timezone as dt_timezone
from urllib.parse import quote

import pytest

from audit.models import AuditRecord
from ledger.models import LedgerAccount
from ledger.tests.factories import customer_account
from transactions.tests.helpers import funded_account

pytestmark = pytest.mark.django_db
NOT_FOUND = {"error": {"code": "not_found", "message": "Invalid cursor."}}


def _drf_cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


def _keyset_cursor(payload) -> str:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.fixture
def pages(api_client):
    """(client, account): an admin customer with two accounts and a deposit, so every list has rows."""
    account = funded_account(amount=100)
    customer_account(owner=account.owner)
    account.owner.role = "admin"  # reads its own lists and the audit trail
    account.owner.save(update_fields=["role"])
    api_client.force_authenticate(account.owner)
    return api_client, account


DRF_LISTS = {
    "accounts": ("/api/v1/accounts", "datetime"),
    "entries": ("/api/v1/accounts/{account}/entries", "integer"),
    "audit": ("/api/v1/admin/audit", "datetime"),
}
BAD_POSITIONS = {
    "datetime": ["notadate", "abc", "2026-02-30T00:00:00+00:00", "0001-01-01T00:00:00+01:00", "\x00"],
    "integer": ["abc", "1.5", "", "\x00", str(2**63), "0x10"],
}


@pytest.mark.parametrize("name", DRF_LISTS)
def test_crafted_drf_cursors_are_not_found(pages, name):
    client, account = pages
    path, kind = DRF_LISTS[name]
    path = path.format(account=account.pk)
    for position in BAD_POSITIONS[kind] + ["garbage-not-base64"]:
        cursor = _drf_cursor(f"p={quote(position)}") if position != "garbage-not-base64" else position
        response = client.get(path, {"cursor": cursor})
        assert (position, response.status_code, response.json()) == (position, 404, NOT_FOUND)


def test_the_reported_cursors_are_not_found(pages):
    client, account = pages
    for url in (
        "/api/v1/accounts?cursor=cD1ub3RhZGF0ZQ==",
        f"/api/v1/accounts/{account.pk}/entries?cursor=cD1hYmM=",
        "/api/v1/admin/audit?cursor=cD1hYmM=",
    ):
        response = client.get(url)
        assert (url, response.status_code, response.json()) == (url, 404, NOT_FOUND)


@pytest.mark.parametrize("offset", [timedelta(hours=20), timedelta(hours=-18)])
def test_a_datetime_position_with_any_offset_pages_in_utc(pages, offset):
    # PostgreSQL refuses offsets past ±15:59 (a 500): the position is read in UTC.
    client, account = pages
    newest = LedgerAccount.objects.filter(owner=account.owner).order_by("-created_at").first()
    local = newest.created_at.astimezone(dt_timezone(offset)).isoformat()
    response = client.get("/api/v1/accounts", {"cursor": _drf_cursor(f"p={quote(local)}")})
    assert response.status_code == 200
    assert [body["id"] for body in response.json()["results"]] == [str(account.pk)]


def test_drf_cursors_still_walk_both_ways(pages):
    client, account = pages
    for _ in range(3):
        AuditRecord.objects.create(action="auth.login_failed", target_type="email", target_id="x", data={})
    expected = [str(pk) for pk in AuditRecord.objects.order_by("-at", "-id").values_list("pk", flat=True)]
    first = client.get("/api/v1/admin/audit", {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    back = client.get(second["previous"]).json()
    assert [r["id"] for r in first["results"] + second["results"]] == expected[:4]
    assert [r["id"] for r in back["results"]] == expected[:2]


@pytest.mark.parametrize(
    "payload",
    [
        {"d": "next", "t": "2026-01-01T00:00:00+00:00", "i": 5},
        {"d": "next", "t": "2026-01-01T00:00:00+00:00", "i": None},
        {"d": "next", "t": "2026-01-01T00:00:00+00:00", "i": "not-a-uuid"},
        {"d": "next", "t": 5, "i": "0190d9b6-7a3c-7b1e-8000-000000000001"},
        {"d": "next", "t": "0001-01-01T00:00:00+01:00", "i": "0190d9b6-7a3c-7b1e-8000-000000000001"},
        {"d": ["next"], "t": "2026-01-01T00:00:00+00:00", "i": "0190d9b6-7a3c-7b1e-8000-000000000001"},
        {"d": "sideways", "t": "2026-01-01T00:00:00+00:00", "i": "0190d9b6-7a3c-7b1e-8000-000000000001"},
        ["next", "2026-01-01T00:00:00+00:00"],
        "[" * 3000 + "]" * 3000,
        "not json",
    ],
)
def test_crafted_transaction_cursors_are_not_found(pages, payload):
    client, _ = pages
    response = client.get("/api/v1/transactions", {"cursor": _keyset_cursor(payload)})
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_a_transaction_cursor_with_any_offset_pages_in_utc(pages):
    client, account = pages
    deposit = client.get("/api/v1/transactions").json()["results"][0]
    later = "9999-12-31T23:59:59+20:00"  # after everything, with an offset PostgreSQL refuses
    cursor = _keyset_cursor({"d": "next", "t": later, "i": deposit["id"]})
    response = client.get("/api/v1/transactions", {"cursor": cursor})
    assert response.status_code == 200
    assert [body["id"] for body in response.json()["results"]] == [deposit["id"]]
