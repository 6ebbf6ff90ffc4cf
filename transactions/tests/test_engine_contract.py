"""The movement contract, for singles and batches alike, on whichever database runs the suite.

Every refusal in precedence order (``transactions.engine.codes``), replays
after the state changed, key reuse with a different body, the booking moment
and the balance limit. The suite runs on SQLite and on PostgreSQL; a rule that
one engine path enforces differently fails here.
"""

from datetime import timedelta

import pytest

from accounts.services import user_suspend
from accounts.tests.factories import AdminFactory, UserFactory
from ledger.models import LedgerAccount
from ledger.exceptions import BALANCE_LIMIT
from ledger.selectors import account_posted_as_of
from ledger.services.customer_accounts import account_freeze
from ledger.tests.factories import customer_account
from transactions.engine.codes import PRECEDENCE, REFUSALS
from transactions.models import Batch, Transaction
from transactions.verification import books_verify
from transactions.tests.helpers import PIN, books, funded_account, user_with_pin

pytestmark = pytest.mark.django_db


def _post(client, path, payload, key="k-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(f"/api/v1/{path}", payload, format="json", **headers)


def _transfer(source, destination, amount, **extra):
    return {
        "type": "transfer",
        "source_account": str(source.pk),
        "destination_account": str(destination.pk),
        "amount": amount,
        **extra,
    }


def _deposit(account, amount, **extra):
    return {"type": "deposit", "account": str(account.pk), "amount": amount, **extra}


def _withdrawal(account, amount, **extra):
    return {"type": "withdrawal", "account": str(account.pk), "amount": amount, **extra}


def _freeze(account):
    account_freeze(actor=AdminFactory(), account=account, reason="test")


def _balance(account) -> tuple[int, int]:
    account.refresh_from_db()
    return account.posted, account.pending


@pytest.fixture
def pair():
    owner = user_with_pin()
    source = funded_account(owner=owner, amount=1_000)
    destination = funded_account(amount=0)
    return owner, source, destination


def _verify_ledger():
    assert [result.name for result in books_verify() if not result.ok] == []


# --- The precedence list --------------------------------------------------------------


def test_precedence_is_one_ordered_list_with_one_exception_each():
    assert PRECEDENCE == (
        "key_bound",
        "in_progress",
        "user_suspended",
        "not_found",
        "same_account",
        "currency_mismatch",
        "quote_expired",
        "account_frozen:source",
        "account_frozen:destination",
        "insufficient_funds",
        "balance_limit",
    )
    assert [REFUSALS[code]().code for code in PRECEDENCE[1:]] == [
        "idempotency_in_progress",
        "user_suspended",
        "not_found",
        "same_account",
        "currency_mismatch",
        "quote_expired",
        "account_frozen",
        "account_frozen",
        "insufficient_funds",
        "balance_limit",
    ]


# Each case breaks the rule named and every rule after it, so the answer must be that rule.
@pytest.mark.parametrize("single", [True, False], ids=["single", "batch"])
@pytest.mark.parametrize(
    "case", ["user_suspended", "currency_mismatch", "frozen_source", "frozen_destination", "insufficient_funds"]
)
def test_the_first_broken_rule_answers(client_for, pair, case, single):
    owner, source, destination = pair
    amount = 5_000  # more than the source holds: insufficient_funds is always broken
    if case == "currency_mismatch":
        destination = funded_account(amount=0, currency="NGN")
        _freeze(source)
        _freeze(destination)
    if case == "frozen_source":
        _freeze(source)
        _freeze(destination)
    if case == "frozen_destination":
        _freeze(destination)
    if case == "user_suspended":
        _freeze(source)
        user_suspend(actor=AdminFactory(), user=owner, reason="test")
    expected = {
        "user_suspended": (403, "user_suspended", None),
        "currency_mismatch": (400, "currency_mismatch", None),
        "frozen_source": (409, "account_frozen", "source"),
        "frozen_destination": (409, "account_frozen", "destination"),
        "insufficient_funds": (409, "insufficient_funds", None),
    }[case]
    before = books()
    client = client_for(owner)
    if single:
        body = {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": amount, "pin": PIN}
        response = _post(client, "transfers", body)
    else:
        response = _post(client, "batches", {"items": [_transfer(source, destination, amount)], "pin": PIN})
    assert (response.status_code, response.json()["error"]["code"]) == expected[:2]
    if expected[2]:
        assert expected[2] in response.json()["error"]["message"]
    if not single and case != "user_suspended":
        assert response.json()["error"]["index"] == 0
    assert books() == before


@pytest.mark.parametrize("single", [True, False], ids=["single", "batch"])
def test_unknown_and_foreign_accounts_are_not_found(client_for, pair, single):
    owner, source, destination = pair
    stranger = funded_account(amount=500)
    before = books()
    client = client_for(owner)
    if single:
        body = {"source_account": str(stranger.pk), "destination_account": str(destination.pk), "amount": 1, "pin": PIN}
        response = _post(client, "transfers", body)
    else:
        response = _post(client, "batches", {"items": [_transfer(stranger, destination, 1)], "pin": PIN})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert books() == before


# --- Batches ---------------------------------------------------------------------------


def test_atomic_batch_applies_items_in_order(client_for, pair):
    owner, source, destination = pair
    third = funded_account(amount=0)
    client = client_for(owner)
    items = [
        _deposit(source, 500, description="top-up"),
        _transfer(source, destination, 1_300, metadata={"ref": "payroll-1"}),  # needs the deposit before it
        _transfer(source, third, 100),
        _withdrawal(source, 0 + 50),
    ]
    response = _post(client, "batches", {"items": items, "pin": PIN}, key="b-1")
    assert response.status_code == 201, response.json()
    body = response.json()
    batch = Batch.objects.get()
    assert body["id"] == str(batch.pk)
    assert (body["atomic"], body["status"], body["count"], body["succeeded"], body["failed"]) == (
        True,
        "committed",
        4,
        4,
        0,
    )
    assert [result["index"] for result in body["results"]] == [0, 1, 2, 3]
    assert all(result["status"] == "ok" and result["error"] is None for result in body["results"])
    kinds = [(r["transaction"]["type"], r["transaction"]["amount"]) for r in body["results"]]
    assert kinds == [("deposit", 500), ("transfer", 1_300), ("transfer", 100), ("withdrawal", 50)]
    assert all(r["transaction"]["batch"] == str(batch.pk) for r in body["results"])
    assert body["results"][1]["transaction"]["metadata"] == {"ref": "payroll-1"}
    assert _balance(source) == (1_000 + 500 - 1_300 - 100 - 50, 0)
    assert _balance(destination) == (1_300, 0)
    assert _balance(third) == (100, 0)
    assert Transaction.objects.filter(batch=batch).count() == 4

    assert client.get(f"/api/v1/batches/{batch.pk}").json() == body
    listed = client.get("/api/v1/batches").json()
    assert [row["id"] for row in listed["results"]] == [str(batch.pk)]
    assert listed["next"] is None and listed["previous"] is None
    filtered = client.get(f"/api/v1/transactions?batch={batch.pk}").json()["results"]
    assert sorted(row["id"] for row in filtered) == sorted(r["transaction"]["id"] for r in body["results"])
    single = client.get(f"/api/v1/transactions/{body['results'][2]['transaction']['id']}").json()
    assert single["batch"] == str(batch.pk)
    _verify_ledger()


def test_atomic_batch_failure_writes_nothing_and_names_the_item(client_for, pair):
    owner, source, destination = pair
    before = books()
    items = [_transfer(source, destination, 600), _deposit(source, 10), _transfer(source, destination, 600)]
    response = _post(client_for(owner), "batches", {"items": items, "pin": PIN})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_funds"
    assert response.json()["error"]["index"] == 2
    assert books() == before
    assert Batch.objects.count() == 0


def test_failed_atomic_batch_does_not_bind_its_key(client_for, pair):
    owner, source, destination = pair
    client = client_for(owner)
    payload = {"items": [_transfer(source, destination, 2_000)], "pin": PIN}
    assert _post(client, "batches", payload, key="again").status_code == 409
    _post(client, "deposits", {"account": str(source.pk), "amount": 1_000}, key="fund")
    response = _post(client, "batches", payload, key="again")
    assert response.status_code == 201
    assert _balance(destination) == (2_000, 0)


def test_non_atomic_batch_reports_each_item(client_for, pair):
    owner, source, destination = pair
    frozen = funded_account(amount=0)
    _freeze(frozen)
    items = [
        _transfer(source, destination, 300),
        _transfer(source, destination, 5_000),  # insufficient
        _transfer(source, frozen, 10),  # frozen destination
        _transfer(source, destination, 700, hold=True),  # sees the 300 gone: exactly enough
        _withdrawal(source, 1),  # all of it held
    ]
    response = _post(client_for(owner), "batches", {"items": items, "atomic": False, "pin": PIN})
    assert response.status_code == 201
    body = response.json()
    assert (body["atomic"], body["status"], body["count"], body["succeeded"], body["failed"]) == (
        False,
        "partial",
        5,
        2,
        3,
    )
    statuses = [(r["status"], r["error"]["code"] if r["error"] else None) for r in body["results"]]
    assert statuses == [
        ("ok", None),
        ("failed", "insufficient_funds"),
        ("failed", "account_frozen"),
        ("ok", None),
        ("failed", "insufficient_funds"),
    ]
    assert [r["transaction"] is None for r in body["results"]] == [False, True, True, False, True]
    assert body["results"][3]["transaction"]["status"] == "pending"
    assert _balance(source) == (700, 700)
    assert _balance(destination) == (300, 0)
    assert _balance(frozen) == (0, 0)
    assert Transaction.objects.filter(batch_id=body["id"]).count() == 2
    _verify_ledger()


def test_non_atomic_batch_where_everything_fails_is_failed_and_binds_its_key(client_for, pair):
    owner, source, destination = pair
    client = client_for(owner)
    before = books()
    payload = {"items": [_transfer(source, destination, 5_000)], "atomic": False, "pin": PIN}
    response = _post(client, "batches", payload, key="nope")
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["failed"]) == ("failed", 1)
    assert books()["balances"] == before["balances"]
    again = _post(client, "batches", payload, key="nope")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == response.json()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"items": []}, "items"),
        ({"items": "x"}, "items"),
        ({"items": [{"type": "gift", "amount": 1}]}, "items.0.type"),
        ({"atomic": "yes", "items": [{"type": "deposit", "account": "ACC", "amount": 1}]}, "atomic"),
    ],
)
def test_malformed_batches_are_400(client_for, pair, payload, field):
    owner, source, _destination = pair
    payload = {**payload, "items": [{**item, "account": str(source.pk)} if item.get("account") else item for item in payload["items"]] if isinstance(payload["items"], list) else payload["items"]}
    before = books()
    response = _post(client_for(owner), "batches", payload)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]
    assert books() == before


def test_bad_item_fields_are_named_by_index(client_for, pair):
    owner, source, destination = pair
    items = [_deposit(source, 1), _deposit(source, 2), _deposit(source, 3), _transfer(source, destination, 1.5)]
    items.append({"type": "withdrawal", "amount": True})
    before = books()
    response = _post(client_for(owner), "batches", {"items": items, "pin": PIN})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"items.3.amount", "items.4.account", "items.4.amount"}
    assert books() == before


def test_more_than_1000_items_is_400(client_for, pair):
    owner, source, _destination = pair
    response = _post(client_for(owner), "batches", {"items": [_deposit(source, 1)] * 1001})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"items"}


def test_pin_required_and_checked_once(client_for, pair):
    owner, source, destination = pair
    client = client_for(owner)
    before = books()
    missing = _post(client, "batches", {"items": [_transfer(source, destination, 1)]})
    assert missing.status_code == 400 and set(missing.json()["error"]["fields"]) == {"pin"}
    wrong = _post(client, "batches", {"items": [_transfer(source, destination, 1)] * 5, "pin": "9999"})
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "invalid_pin"
    assert wrong.json()["error"]["attempts_remaining"] == 2  # one attempt for the whole batch
    assert books()["balances"] == before["balances"]
    # A batch of deposits needs no PIN.
    assert _post(client, "batches", {"items": [_deposit(source, 5)]}, key="dep").status_code == 201


def test_batch_replay_and_key_reuse(client_for, pair):
    owner, source, destination = pair
    client = client_for(owner)
    payload = {"items": [_transfer(source, destination, 100), _deposit(source, 7)], "pin": PIN}
    first = _post(client, "batches", payload, key="same")
    assert first.status_code == 201
    after_first = books()
    _freeze(source)  # the state changed since: the replay still answers what happened
    replay = _post(client, "batches", {**payload, "pin": "0000-not-checked"}, key="same")
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert books()["transactions"] == after_first["transactions"]
    reused = _post(client, "batches", {**payload, "atomic": False}, key="same")
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


def test_suspended_user_moves_nothing_in_a_deposit_batch(client_for, pair):
    owner, source, _destination = pair
    user_suspend(actor=AdminFactory(), user=owner, reason="test")
    before = books()
    response = _post(client_for(owner), "batches", {"items": [_deposit(source, 5)]})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "user_suspended"
    assert books() == before


def test_other_users_batches_are_not_found(client_for, pair):
    owner, source, _destination = pair
    response = _post(client_for(owner), "batches", {"items": [_deposit(source, 5)]})
    stranger = UserFactory()
    assert client_for(stranger).get(f"/api/v1/batches/{response.json()['id']}").status_code == 404
    assert client_for(stranger).get("/api/v1/batches").json()["results"] == []


def test_batches_list_pages_with_cursors(client_for, pair):
    owner, source, _destination = pair
    client = client_for(owner)
    ids = [_post(client, "batches", {"items": [_deposit(source, 1)]}, key=f"p{n}").json()["id"] for n in range(3)]
    first = client.get("/api/v1/batches?page_size=2").json()
    assert [row["id"] for row in first["results"]] == ids[::-1][:2]
    second = client.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == [ids[0]]
    assert second["next"] is None
    back = client.get(second["previous"]).json()
    assert [row["id"] for row in back["results"]] == ids[::-1][:2]


# --- Booking moment and balance limit --------------------------------------------------


@pytest.mark.parametrize("single", [True, False], ids=["single", "batch"])
def test_committed_at_is_the_booking_moment(client_for, pair, single):
    owner, source, destination = pair
    client = client_for(owner)
    if single:
        body = {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 300, "pin": PIN}
        txn = _post(client, "transfers", body).json()
    else:
        txn = _post(client, "batches", {"items": [_transfer(source, destination, 300)], "pin": PIN}).json()
        txn = txn["results"][0]["transaction"]
    committed = Transaction.objects.get(pk=txn["id"]).committed_at
    for account, at, before in ((destination, 300, 0), (source, 700, 1_000)):
        assert account_posted_as_of(account=account, as_of=committed) == at
        assert account_posted_as_of(account=account, as_of=committed - timedelta(microseconds=1)) == before


@pytest.mark.parametrize("kind", ["deposit", "transfer", "batch"])
def test_every_view_of_a_movement_says_the_same_booking_moment(client_for, pair, kind):
    """The response, a replay, GET transactions/{id} and the transaction.created event agree to the microsecond."""
    owner, source, destination = pair
    client = client_for(owner)
    if kind == "deposit":
        path, body = "deposits", {"account": str(source.pk), "amount": 5}
    elif kind == "transfer":
        path, body = "transfers", {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 5, "pin": PIN}
    else:
        path, body = "batches", {"items": [_transfer(source, destination, 5)], "pin": PIN}
    answered = _post(client, path, body, key="moment").json()
    replayed = _post(client, path, body, key="moment").json()
    txn = answered["results"][0]["transaction"] if kind == "batch" else answered
    assert (replayed["results"][0]["transaction"] if kind == "batch" else replayed) == txn
    shown = client.get(f"/api/v1/transactions/{txn['id']}").json()
    events = client.get("/api/v1/events", {"type": "transaction.created"}).json()["results"]
    event = next(e for e in events if e["data"]["id"] == txn["id"])
    assert txn["committed_at"] == shown["committed_at"] == event["data"]["committed_at"]
    assert event["data"] == shown


@pytest.mark.parametrize("single", [True, False], ids=["single", "batch"])
def test_no_balance_passes_the_limit(client_for, single):
    owner = user_with_pin()
    account = customer_account(owner=owner)
    LedgerAccount.objects.filter(pk=account.pk).update(posted=BALANCE_LIMIT - 10)
    client = client_for(owner)
    before = books()
    if single:
        response = _post(client, "deposits", {"account": str(account.pk), "amount": 11})
    else:
        response = _post(client, "batches", {"items": [_deposit(account, 10), _deposit(account, 1)]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "balance_limit"
    assert books() == before
    ok = _post(client, "deposits", {"account": str(account.pk), "amount": 10}, key="fits")
    assert ok.status_code == 201
    assert _balance(account) == (BALANCE_LIMIT, 0)


# --- Replays after the state changed (singles) -----------------------------------------


@pytest.mark.parametrize(
    "change", ["frozen", "suspended", "balance"]
)
def test_replay_of_a_finished_deposit_after_a_state_change(client_for, change):
    owner = user_with_pin()
    account = funded_account(owner=owner, amount=0)
    client = client_for(owner)
    payload = {"account": str(account.pk), "amount": 250}
    first = _post(client, "deposits", payload, key="dep-1")
    assert first.status_code == 201
    if change == "frozen":
        _freeze(account)
    elif change == "suspended":
        user_suspend(actor=AdminFactory(), user=owner, reason="test")
    else:
        _post(client, "deposits", {**payload, "amount": 1}, key="dep-2")
    before = books()
    replay = _post(client, "deposits", payload, key="dep-1")
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert books() == before


@pytest.mark.parametrize("change", ["frozen", "suspended", "balance"])
def test_replay_of_a_finished_transfer_after_a_state_change(client_for, pair, change):
    owner, source, destination = pair
    client = client_for(owner)
    payload = {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 600, "pin": PIN}
    first = _post(client, "transfers", payload, key="t-1")
    assert first.status_code == 201
    if change == "frozen":
        _freeze(source)
    elif change == "suspended":
        user_suspend(actor=AdminFactory(), user=owner, reason="test")
    else:
        _post(client, "transfers", {**payload, "amount": 400}, key="t-2")  # the source is empty now
    before = books()
    replay = _post(client, "transfers", payload, key="t-1")
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert books() == before
    reused = _post(client, "transfers", {**payload, "amount": 1}, key="t-1")
    assert reused.status_code == 422
