"""POST/GET batches over HTTP, on both databases: the contract's "Batches" section."""

from datetime import timedelta

import pytest

from accounts.models import User
from accounts.tests.factories import UserFactory
from ledger.exceptions import BALANCE_LIMIT
from ledger.models import LedgerAccount
from ledger.services.customer_accounts import account_freeze
from ledger.tests.factories import customer_account
from ledger.tests.fixtures import client_for  # noqa: F401
from ledger.verification import ledger_checks
from transactions.models import Batch, IdempotencyRecord, Transaction
from transactions.tests.helpers import PIN, books, funded_account, user_with_pin

pytestmark = pytest.mark.django_db


def post_batch(client, body, key="b-1"):
    return client.post("/api/v1/batches", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def posted(account) -> int:
    return LedgerAccount.objects.get(pk=account.pk).posted


def assert_ledger_ok():
    assert [check.name for check in ledger_checks() if not check.ok] == []


@pytest.fixture
def payer():
    return user_with_pin()


@pytest.fixture
def accounts(payer):
    """The payer's funded USD account, an empty one of theirs, and someone else's."""
    return funded_account(owner=payer, amount=10_000), customer_account(owner=payer), customer_account()


def test_an_atomic_batch_applies_every_item_in_order(client_for, payer, accounts):
    source, spare, other = accounts
    body = {
        "pin": PIN,
        "items": [
            {"type": "deposit", "account": str(spare.pk), "amount": 500},
            # funded by the deposit before it
            {"type": "transfer", "source_account": str(spare.pk), "destination_account": str(other.pk), "amount": 500},
            {"type": "withdrawal", "account": str(source.pk), "amount": 1_000, "description": "payout"},
            {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 300, "hold": True},
        ],
    }
    response = post_batch(client_for(payer), body)
    assert response.status_code == 201, response.json()
    batch = response.json()
    assert {k: batch[k] for k in ("atomic", "status", "count", "succeeded", "failed")} == {
        "atomic": True, "status": "committed", "count": 4, "succeeded": 4, "failed": 0,
    }
    assert [r["index"] for r in batch["results"]] == [0, 1, 2, 3]
    assert all(r["status"] == "ok" and r["error"] is None for r in batch["results"])
    txns = [r["transaction"] for r in batch["results"]]
    assert [(t["type"], t["status"], t["amount"], t["batch"]) for t in txns] == [
        ("deposit", "committed", 500, batch["id"]),
        ("transfer", "committed", 500, batch["id"]),
        ("withdrawal", "committed", 1_000, batch["id"]),
        ("transfer", "pending", 300, batch["id"]),
    ]
    assert (posted(source), posted(spare), posted(other)) == (9_000, 0, 500)
    assert LedgerAccount.objects.get(pk=source.pk).pending == 300
    assert Transaction.objects.filter(batch_id=batch["id"]).count() == 4
    assert IdempotencyRecord.objects.filter(endpoint="batches").count() == 1

    client = client_for(payer)
    assert client.get(f"/api/v1/batches/{batch['id']}").json() == batch
    listed = client.get("/api/v1/batches").json()
    assert [b["id"] for b in listed["results"]] == [batch["id"]]
    in_batch = client.get(f"/api/v1/transactions?batch={batch['id']}").json()["results"]
    assert sorted(t["id"] for t in in_batch) == sorted(t["id"] for t in txns)
    single = client.get(f"/api/v1/transactions/{txns[2]['id']}").json()
    assert single == txns[2]
    assert_ledger_ok()


def test_an_atomic_batch_with_a_refused_item_writes_nothing(client_for, payer, accounts):
    source, spare, other = accounts
    before = books()
    body = {
        "pin": PIN,
        "items": [
            {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 6_000},
            {"type": "transfer", "source_account": str(source.pk), "destination_account": str(spare.pk), "amount": 4_000},
            {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 1},
        ],
    }
    response = post_batch(client_for(payer), body)
    assert response.status_code == 409
    assert response.json() == {
        "error": {"code": "insufficient_funds", "message": response.json()["error"]["message"], "index": 2}
    }
    assert books() == before
    assert Batch.objects.count() == 0


def test_a_non_atomic_batch_reports_each_item(client_for, payer, accounts):
    source, spare, other = accounts
    account_freeze(actor=UserFactory(role=User.Role.ADMIN), account=spare, reason="test")
    body = {
        "atomic": False,
        "pin": PIN,
        "items": [
            {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 4_000},
            {"type": "transfer", "source_account": str(source.pk), "destination_account": str(spare.pk), "amount": 10},
            {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 7_000},
            {"type": "transfer", "source_account": str(other.pk), "destination_account": str(source.pk), "amount": 10},
            {"type": "transfer", "source_account": str(source.pk), "destination_account": str(source.pk), "amount": 10},
            {"type": "withdrawal", "account": str(source.pk), "amount": 6_000},
        ],
    }
    response = post_batch(client_for(payer), body)
    assert response.status_code == 201
    batch = response.json()
    assert (batch["status"], batch["succeeded"], batch["failed"]) == ("partial", 2, 4)
    outcomes = [(r["status"], r["error"] and r["error"]["code"]) for r in batch["results"]]
    assert outcomes == [
        ("ok", None),
        ("failed", "account_frozen"),
        ("failed", "insufficient_funds"),
        ("failed", "not_found"),  # debits someone else's account
        ("failed", "same_account"),
        ("ok", None),
    ]
    assert all(r["transaction"] is None for r in batch["results"] if r["status"] == "failed")
    assert (posted(source), posted(spare), posted(other)) == (0, 0, 4_000)
    assert Transaction.objects.filter(batch_id=batch["id"]).count() == 2
    assert_ledger_ok()


def test_a_batch_where_every_item_fails_is_failed_and_moves_nothing(client_for, payer, accounts):
    source, spare, other = accounts
    before = books()
    body = {"atomic": False, "pin": PIN, "items": [
        {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 20_000},
    ]}
    response = post_batch(client_for(payer), body)
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["failed"]) == ("failed", 1)
    after = books()
    assert after["balances"] == before["balances"] and after["postings"] == before["postings"]


@pytest.mark.parametrize(
    "items, field",
    [
        ([{"type": "deposit", "account": "x", "amount": 10.5}], "items.0.amount"),
        ([{"type": "deposit", "amount": 10}], "items.0.account"),
        ([{"type": "loan", "account": None, "amount": 10}], "items.0.type"),
        ([{"type": {}, "account": "00000000-0000-0000-0000-000000000001", "amount": 1}], "items.0.type"),
        ([{"type": "deposit", "account": "00000000-0000-0000-0000-000000000001", "amount": 10, "hold": True}], "items.0.hold"),
        ([], "items"),
        ([{"type": "deposit", "account": "00000000-0000-0000-0000-000000000001", "amount": 1}] * 1001, "items"),
    ],
)
def test_a_malformed_batch_is_a_validation_error(client_for, payer, accounts, items, field):
    before = books()
    response = post_batch(client_for(payer), {"items": items, "pin": PIN})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]
    assert books() == before


def test_a_debiting_batch_needs_the_pin_and_a_wrong_one_counts_once(client_for, payer, accounts):
    source, _spare, other = accounts
    item = {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 1}
    client = client_for(payer)
    missing = post_batch(client, {"items": [item]}, key="b-nopin")
    assert missing.status_code == 400 and "pin" in missing.json()["error"]["fields"]
    before = books()
    wrong = post_batch(client, {"items": [item, item, item], "pin": "9513"}, key="b-wrong")
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "invalid_pin"
    assert wrong.json()["error"]["attempts_remaining"] == 2
    assert books() == before
    deposit_only = post_batch(client, {"items": [{"type": "deposit", "account": str(source.pk), "amount": 5}]}, key="b-dep")
    assert deposit_only.status_code == 201


def test_a_suspended_user_moves_nothing(client_for, payer, accounts):
    source, _spare, other = accounts
    User.objects.filter(pk=payer.pk).update(status=User.Status.SUSPENDED)
    before = books()
    body = {"items": [{"type": "deposit", "account": str(source.pk), "amount": 5}]}
    response = post_batch(client_for(payer), body)
    assert response.status_code == 403 and response.json()["error"]["code"] == "user_suspended"
    assert books() == before


def test_a_retried_batch_replays_and_a_changed_one_is_refused(client_for, payer, accounts):
    source, _spare, other = accounts
    item = {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 100}
    client = client_for(payer)
    first = post_batch(client, {"items": [item], "pin": PIN})
    assert first.status_code == 201
    account_freeze(actor=UserFactory(role=User.Role.ADMIN), account=source, reason="after the batch")
    again = post_batch(client, {"items": [item], "pin": PIN})
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert posted(other) == 100
    changed = post_batch(client, {"items": [{**item, "amount": 101}], "pin": PIN})
    assert changed.status_code == 422 and changed.json()["error"]["code"] == "idempotency_key_reused"
    assert Batch.objects.count() == 1


def test_committed_at_is_the_booking_moment(client_for, payer, accounts):
    source, _spare, other = accounts
    item = {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 100}
    batch = post_batch(client_for(payer), {"items": [item, item], "pin": PIN}).json()
    committed_at = batch["results"][1]["transaction"]["committed_at"]
    assert committed_at == batch["results"][0]["transaction"]["committed_at"]
    client = client_for(payer)
    at = client.get(f"/api/v1/accounts/{source.pk}/balance", {"as_of": committed_at}).json()
    assert at["posted"] == 9_800
    from ledgerx.api.timestamps import timestamp_parse

    earlier = (timestamp_parse(committed_at) - timedelta(microseconds=1)).isoformat()
    assert client.get(f"/api/v1/accounts/{source.pk}/balance", {"as_of": earlier}).json()["posted"] == 10_000


def test_no_balance_passes_the_limit(client_for, payer, accounts):
    source, spare, _other = accounts
    LedgerAccount.objects.filter(pk=spare.pk).update(posted=BALANCE_LIMIT - 10)
    client = client_for(payer)
    body = {"items": [{"type": "deposit", "account": str(spare.pk), "amount": 11}]}
    response = post_batch(client, body)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "balance_limit" and response.json()["error"]["index"] == 0
    exactly = post_batch(client, {"items": [{"type": "deposit", "account": str(spare.pk), "amount": 10}]}, key="b-2")
    assert exactly.status_code == 201
    assert posted(spare) == BALANCE_LIMIT


@pytest.mark.parametrize("path", ["deposits"])
def test_a_single_deposit_past_the_limit_is_refused(client_for, payer, accounts, path):
    _source, spare, _other = accounts
    LedgerAccount.objects.filter(pk=spare.pk).update(posted=BALANCE_LIMIT)
    before = books()
    response = client_for(payer).post(
        f"/api/v1/{path}", {"account": str(spare.pk), "amount": 1}, format="json", HTTP_IDEMPOTENCY_KEY="lim"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "balance_limit"
    assert books() == before


def test_a_finished_deposit_replays_after_its_account_is_frozen(client_for, payer, accounts):
    """The key comes first in the refusal order, on both databases."""
    _source, spare, _other = accounts
    client = client_for(payer)
    body = {"account": str(spare.pk), "amount": 250}
    first = client.post("/api/v1/deposits", body, format="json", HTTP_IDEMPOTENCY_KEY="dep-1")
    assert first.status_code == 201
    account_freeze(actor=UserFactory(role=User.Role.ADMIN), account=spare, reason="after the deposit")
    again = client.post("/api/v1/deposits", body, format="json", HTTP_IDEMPOTENCY_KEY="dep-1")
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert posted(spare) == 250


def test_others_batches_are_not_found(client_for, payer, accounts):
    source, _spare, _other = accounts
    batch = post_batch(client_for(payer), {"items": [{"type": "deposit", "account": str(source.pk), "amount": 5}]}).json()
    stranger = UserFactory()
    client = client_for(stranger)
    assert client.get(f"/api/v1/batches/{batch['id']}").status_code == 404
    assert client.get("/api/v1/batches").json()["results"] == []


def test_a_batch_writes_its_events_in_its_transaction(client_for, payer, accounts):
    source, _spare, other = accounts
    body = {"pin": PIN, "items": [
        {"type": "deposit", "account": str(source.pk), "amount": 5},
        {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 7},
    ]}
    batch = post_batch(client_for(payer), body).json()
    mine = client_for(payer).get("/api/v1/events").json()["results"]
    created = [e for e in mine if e["type"] == "transaction.created" and e["data"].get("batch") == batch["id"]]
    assert sorted(e["data"]["amount"] for e in created) == [5, 7]
    assert [e["data"]["id"] for e in mine if e["type"] == "batch.created"] == [batch["id"]]
    theirs = client_for(other.owner).get("/api/v1/events").json()["results"]
    assert [(e["type"], e["data"]["amount"]) for e in theirs if e["data"].get("batch") == batch["id"]] == [
        ("transaction.created", 7)
    ]
    # A refused atomic batch leaves no event.
    before = len(client_for(payer).get("/api/v1/events").json()["results"])
    refused = post_batch(client_for(payer), {"pin": PIN, "items": [
        {"type": "transfer", "source_account": str(source.pk), "destination_account": str(other.pk), "amount": 10**9},
    ]}, key="b-refused")
    assert refused.status_code == 409
    assert len(client_for(payer).get("/api/v1/events").json()["results"]) == before


@pytest.mark.parametrize("path", ["deposits", "transfers"])
def test_a_single_movements_committed_at_is_its_booking_moment(client_for, payer, accounts, path):
    source, _spare, other = accounts
    client = client_for(payer)
    body = (
        {"account": str(source.pk), "amount": 40}
        if path == "deposits"
        else {"source_account": str(source.pk), "destination_account": str(other.pk), "amount": 40, "pin": PIN}
    )
    first = client.post(f"/api/v1/{path}", body, format="json", HTTP_IDEMPOTENCY_KEY="booked")
    assert first.status_code == 201
    committed_at = first.json()["committed_at"]
    from ledgerx.api.timestamps import timestamp_parse

    at = timestamp_parse(committed_at)
    expected = 10_040 if path == "deposits" else 9_960
    balance = client.get(f"/api/v1/accounts/{source.pk}/balance", {"as_of": committed_at}).json()["posted"]
    assert balance == expected
    earlier = (at - timedelta(microseconds=1)).isoformat()
    assert client.get(f"/api/v1/accounts/{source.pk}/balance", {"as_of": earlier}).json()["posted"] == 10_000
    replay = client.post(f"/api/v1/{path}", body, format="json", HTTP_IDEMPOTENCY_KEY="booked")
    assert replay.json()["committed_at"] == committed_at


def test_a_non_atomic_batch_naming_only_unknown_accounts_fails_every_item(client_for, payer):
    before = books()
    unknown = "e3e70682-c209-1cac-a29f-6fbed82c07cd"
    items = [{"type": "deposit", "account": unknown, "amount": 1}, {"type": "withdrawal", "account": unknown, "amount": 1}]
    response = post_batch(client_for(payer), {"items": items, "atomic": False, "pin": PIN})
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "failed"
    assert [result["error"]["code"] for result in response.json()["results"]] == ["not_found", "not_found"]
    after = books()  # the 201 binds its key; no money moved
    assert (after["balances"], after["postings"]) == (before["balances"], before["postings"])
