import pytest

from accounts.tests.factories import UserFactory
from ledger.models import LedgerAccount
from ledger.tests.factories import customer_account
from transactions.models import IdempotencyRecord, Transaction
from transactions.tests.helpers import PIN, books, funded_account

pytestmark = pytest.mark.django_db

TRANSACTION_KEYS = {
    "id",
    "type",
    "status",
    "amount",
    "currency",
    "source_account",
    "destination_account",
    "description",
    "metadata",
    "created_at",
    "committed_at",
    "reverses",
    "reversed_by",
    "batch",
}


def _post(client, path, payload, key="k-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(f"/api/v1/{path}", payload, format="json", **headers)


def test_deposit(client_for):
    owner = UserFactory()
    account = customer_account(owner=owner)
    response = _post(client_for(owner), "deposits", {"account": str(account.pk), "amount": 1050, "description": "pay"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == TRANSACTION_KEYS
    txn = Transaction.objects.get()
    assert body == {
        "id": str(txn.pk),
        "type": "deposit",
        "status": "committed",
        "amount": 1050,
        "currency": "USD",
        "source_account": None,
        "destination_account": str(account.pk),
        "description": "pay",
        "metadata": {},
        "created_at": body["created_at"],
        "committed_at": body["committed_at"],
        "reverses": None,
        "reversed_by": None,
        "batch": None,
    }
    assert "Idempotent-Replayed" not in response
    account.refresh_from_db()
    assert account.posted == 1050


@pytest.mark.parametrize("amount", [10.5, 10.0, "1050", True, False, None, 0, -1, 10**15 + 1])
def test_strict_amount(client_for, amount):
    owner = UserFactory()
    account = customer_account(owner=owner)
    before = books()
    response = _post(client_for(owner), "deposits", {"account": str(account.pk), "amount": amount})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and list(error["fields"]) == ["amount"]
    assert books() == before


def test_missing_amount_and_malformed_json(client_for):
    owner = UserFactory()
    account = customer_account(owner=owner)
    client = client_for(owner)
    response = _post(client, "deposits", {"account": str(account.pk)})
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["amount"]
    response = client.post(
        "/api/v1/deposits", "{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY="x"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("endpoint", ["deposits", "withdrawals", "transfers"])
@pytest.mark.parametrize(
    "metadata, message",
    [
        # Raw JSON: the escapes reach the parser as written (a NUL, a lone surrogate).
        (r'{"k": "a\u0000b"}', "Null characters are not allowed."),
        (r'{"a\u0000": "b"}', "Null characters are not allowed."),
        (r'{"k": "\ud800"}', "Surrogate characters are not allowed: U+D800."),
    ],
)
def test_metadata_that_the_database_cannot_store_is_400(client_for, endpoint, metadata, message):
    source = funded_account(amount=100)
    destination = funded_account(amount=0)
    fields = {
        "deposits": f'"account": "{source.pk}"',
        "withdrawals": f'"account": "{source.pk}", "pin": "{PIN}"',
        "transfers": f'"source_account": "{source.pk}", "destination_account": "{destination.pk}", "pin": "{PIN}"',
    }[endpoint]
    before = books()
    response = client_for(source.owner).post(
        f"/api/v1/{endpoint}",
        f'{{{fields}, "amount": 5, "metadata": {metadata}}}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"metadata": [f"Keys and values: {message}"]}
    assert books() == before


def test_idempotency_key_required_and_validated(client_for):
    owner = UserFactory()
    account = customer_account(owner=owner)
    client = client_for(owner)
    payload = {"account": str(account.pk), "amount": 5}
    response = _post(client, "deposits", payload, key=None)
    assert response.status_code == 400 and response.json()["error"]["code"] == "idempotency_key_required"
    response = _post(client, "deposits", payload, key="x" * 256)
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"
    assert Transaction.objects.count() == 0


def test_replay_and_reuse(client_for):
    account = funded_account(amount=1000)
    client = client_for(account.owner)
    payload = {"account": str(account.pk), "amount": 300, "pin": PIN}
    first = _post(client, "withdrawals", payload, key="w")
    replay = _post(client, "withdrawals", {**payload, "pin": "0000"}, key="w")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    reused = _post(client, "withdrawals", {**payload, "amount": 301}, key="w")
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    account.refresh_from_db()
    assert account.posted == 700
    assert Transaction.objects.filter(type="withdrawal").count() == 1


# Keys jsonb would reorder (it sorts by length, then bytes): the replay must not.
_METADATA = {"zz-order": "3", "a": "1", "middle-key": "2"}


@pytest.mark.parametrize("endpoint", ["deposits", "withdrawals", "transfers", "batches"])
def test_a_replay_is_the_first_answer_byte_for_byte(client_for, endpoint):
    account = funded_account(amount=1000)
    other = customer_account(owner=account.owner)
    money = {"amount": 300, "description": "rent", "metadata": _METADATA}
    payload = {
        "deposits": {"account": str(account.pk), **money},
        "withdrawals": {"account": str(account.pk), "pin": PIN, **money},
        "transfers": {"source_account": str(account.pk), "destination_account": str(other.pk), "pin": PIN, **money},
        "batches": {"pin": PIN, "items": [{"type": "withdrawal", "account": str(account.pk), **money}]},
    }[endpoint]
    client = client_for(account.owner)
    first = _post(client, endpoint, payload, key="bytes")
    replay = _post(client, endpoint, payload, key="bytes")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert replay.content == first.content
    assert replay["Location"] == first["Location"]
    assert IdempotencyRecord.objects.filter(key="bytes").count() == 1


def test_withdrawal_errors(client_for):
    account = funded_account(amount=100)
    client = client_for(account.owner)
    before = books()
    response = _post(client, "withdrawals", {"account": str(account.pk), "amount": 101, "pin": PIN})
    assert response.status_code == 409 and response.json()["error"]["code"] == "insufficient_funds"
    response = _post(client, "withdrawals", {"account": str(account.pk), "amount": 1, "pin": "9999"}, key="k-2")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_pin" and response.json()["error"]["attempts_remaining"] == 2
    response = _post(client, "withdrawals", {"account": str(account.pk), "amount": 1, "pin": 4826}, key="k-3")
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["pin"]
    response = _post(client, "withdrawals", {"account": str(account.pk), "amount": 1}, key="k-4")
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["pin"]
    assert books() == before
    # A failed request does not bind its key.
    assert _post(client, "withdrawals", {"account": str(account.pk), "amount": 100, "pin": PIN}).status_code == 201


# Real commits: balance caches refresh in on_commit, as in production.
@pytest.mark.django_db(transaction=True)
def test_transfer_and_hold_flow(client_for):
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    client = client_for(source.owner)
    payload = {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 250, "pin": PIN}
    direct = _post(client, "transfers", payload, key="t1")
    assert direct.status_code == 201 and direct.json()["status"] == "committed"
    held = _post(client, "transfers", {**payload, "hold": True}, key="t2")
    assert held.status_code == 201 and held.json()["status"] == "pending" and held.json()["committed_at"] is None
    hold_id = held.json()["id"]
    account = client.get(f"/api/v1/accounts/{source.pk}").json()
    assert account["balance"] == {"posted": 750, "pending": 250, "available": 500}
    # The destination's owner sees the hold but cannot commit it.
    other = client_for(destination.owner)
    assert other.get(f"/api/v1/transactions/{hold_id}").status_code == 200
    response = other.post(f"/api/v1/transactions/{hold_id}/commit")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    client = client_for(source.owner)
    committed = client.post(f"/api/v1/transactions/{hold_id}/commit")
    assert committed.status_code == 200 and committed.json()["status"] == "committed"
    again = client.post(f"/api/v1/transactions/{hold_id}/void")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    assert client.get(f"/api/v1/accounts/{source.pk}").json()["balance"] == {
        "posted": 500,
        "pending": 0,
        "available": 500,
    }


def test_void(client_for):
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    client = client_for(source.owner)
    payload = {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 250, "pin": PIN}
    hold_id = _post(client, "transfers", {**payload, "hold": True}).json()["id"]
    response = client.post(f"/api/v1/transactions/{hold_id}/void")
    assert response.status_code == 200 and response.json()["status"] == "voided"
    assert client.post(f"/api/v1/transactions/{hold_id}/commit").status_code == 409


@pytest.mark.parametrize(
    "change, status, code",
    [
        ({"hold": "yes"}, 400, "validation_error"),
        ({"destination_account": "same"}, 400, "same_account"),
        ({"destination_account": "ngn"}, 400, "currency_mismatch"),
        ({"destination_account": "00000000-0000-0000-0000-000000000000"}, 404, "not_found"),
        ({"source_account": "foreign"}, 404, "not_found"),
        ({"metadata": {"k": 5}}, 400, "validation_error"),
    ],
)
def test_transfer_errors(client_for, change, status, code):
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    replacements = {
        "same": str(source.pk),
        "ngn": str(customer_account(currency="NGN").pk),
        "foreign": str(funded_account(amount=10).pk),
    }
    change = {key: replacements.get(value, value) if isinstance(value, str) else value for key, value in change.items()}
    payload = {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 1, "pin": PIN}
    before = books()
    response = _post(client_for(source.owner), "transfers", {**payload, **change})
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert books() == before


def test_transaction_list_filters_and_scope(client_for):
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    stranger = funded_account(amount=10)
    client = client_for(source.owner)
    payload = {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 10, "pin": PIN}
    _post(client, "transfers", payload, key="a")
    _post(client, "transfers", {**payload, "hold": True}, key="b")
    listing = client.get("/api/v1/transactions").json()["results"]
    assert [(t["type"], t["status"]) for t in listing] == [("transfer", "pending"), ("transfer", "committed"), ("deposit", "committed")]
    assert [t["status"] for t in client.get("/api/v1/transactions", {"status": "pending"}).json()["results"]] == ["pending"]
    assert [t["type"] for t in client.get("/api/v1/transactions", {"type": "deposit"}).json()["results"]] == ["deposit"]
    assert len(client.get("/api/v1/transactions", {"account": str(source.pk)}).json()["results"]) == 3
    assert client.get("/api/v1/transactions", {"account": str(stranger.pk)}).status_code == 404
    assert client.get("/api/v1/transactions", {"status": "bogus"}).status_code == 400
    for name in ("account", "status", "type", "batch"):  # an empty filter is a bad value, not "no filter"
        response = client.get(f"/api/v1/transactions?{name}=")
        assert response.status_code == 400 and name in response.json()["error"]["fields"], name
    assert client.get("/api/v1/events?type=").status_code == 400
    # The receiver sees the transfers, the stranger sees only their own deposit.
    receiver = client_for(destination.owner).get("/api/v1/transactions").json()["results"]
    assert len(receiver) == 2
    stranger_view = client_for(stranger.owner).get("/api/v1/transactions").json()["results"]
    assert [t["type"] for t in stranger_view] == ["deposit"]
    foreign_id = Transaction.objects.get(destination_account=stranger).pk
    client = client_for(source.owner)
    assert client.get(f"/api/v1/transactions/{foreign_id}").status_code == 404
    assert client.post(f"/api/v1/transactions/{foreign_id}/commit").status_code == 404


def test_frozen_and_suspended(client_for):
    from accounts.tests.factories import AdminFactory
    from ledger.services.customer_accounts import account_freeze

    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    account_freeze(actor=AdminFactory(), account=destination, reason="r")
    client = client_for(source.owner)
    payload = {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 1, "pin": PIN}
    response = _post(client, "transfers", payload)
    assert response.status_code == 409 and response.json()["error"]["code"] == "account_frozen"
    source.owner.status = "suspended"
    source.owner.save(update_fields=["status"])
    response = _post(client, "deposits", {"account": str(source.pk), "amount": 1}, key="d")
    assert response.status_code == 403 and response.json()["error"]["code"] == "user_suspended"
    assert client.get(f"/api/v1/accounts/{source.pk}").status_code == 200  # reading stays allowed
    assert IdempotencyRecord.objects.filter(user=source.owner).count() == 1  # only the funding deposit


def test_schema_documents_money_endpoints(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    transfer = schema["paths"]["/api/v1/transfers"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" and p["required"] for p in transfer["parameters"])
    assert {"201", "400", "403", "404", "409", "422"} <= set(transfer["responses"])
    for path in (
        "/api/v1/accounts",
        "/api/v1/accounts/{account_id}",
        "/api/v1/accounts/{account_id}/balance",
        "/api/v1/accounts/{account_id}/entries",
        "/api/v1/deposits",
        "/api/v1/withdrawals",
        "/api/v1/transactions",
        "/api/v1/transactions/{transaction_id}",
        "/api/v1/transactions/{transaction_id}/commit",
        "/api/v1/transactions/{transaction_id}/void",
    ):
        assert path in schema["paths"], path
    assert LedgerAccount.objects.count() == 0


def test_commit_or_void_of_a_non_hold_is_invalid_state(client_for):
    account = funded_account(amount=100)
    deposit_id = Transaction.objects.get(destination_account=account).pk
    client = client_for(account.owner)
    for action in ("commit", "void"):
        response = client.post(f"/api/v1/transactions/{deposit_id}/{action}")
        assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_state"


def test_transaction_pages_walk_forward_and_back_without_gaps_or_duplicates(client_for):
    from ledger.tests.factories import customer_account as open_account
    from transactions.services.money import transfer_create

    source = funded_account(amount=1000)
    second_own = open_account(owner=source.owner)
    other = funded_account(amount=0)
    for index in range(3):
        transfer_create(actor=source.owner, source=source, destination=second_own, amount=1, pin=PIN, idempotency_key=f"own-{index}")
        transfer_create(actor=source.owner, source=source, destination=other, amount=1, pin=PIN, idempotency_key=f"out-{index}")
    transfer_create(actor=other.owner, source=other, destination=source, amount=1, pin=PIN, idempotency_key="in")
    expected = [
        str(pk)
        for pk in Transaction.objects.filter(
            pk__in=[t.pk for t in Transaction.objects.all() if t.source_account_id in (source.pk, second_own.pk) or t.destination_account_id in (source.pk, second_own.pk)]
        )
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    ]
    assert len(expected) == 8  # funding deposit + 6 outgoing + 1 incoming; own transfers once
    client = client_for(source.owner)
    pages, url = [], "/api/v1/transactions?page_size=3"
    while url:
        body = client.get(url).json()
        pages.append(body)
        url = body["next"]
    assert [len(page["results"]) for page in pages] == [3, 3, 2]
    assert [t["id"] for page in pages for t in page["results"]] == expected
    assert pages[0]["previous"] is None and pages[1]["previous"] and pages[2]["previous"]
    back = client.get(pages[2]["previous"]).json()
    assert [t["id"] for t in back["results"]] == expected[3:6]
    first = client.get(back["previous"]).json()
    assert [t["id"] for t in first["results"]] == expected[:3] and first["previous"] is None
    assert client.get("/api/v1/transactions", {"cursor": "garbage"}).status_code == 404
    filtered = client.get("/api/v1/transactions", {"account": str(second_own.pk), "page_size": 2}).json()
    assert [t["destination_account"] for t in filtered["results"]] == [str(second_own.pk)] * 2 and filtered["next"]


def test_key_in_flight_answers_409(client_for):
    from transactions.tests.helpers import key_in_flight

    owner = UserFactory()
    account = customer_account(owner=owner)
    with key_in_flight(owner, "deposits", "busy"):
        response = _post(client_for(owner), "deposits", {"account": str(account.pk), "amount": 5}, key="busy")
    assert response.status_code == 409 and response.json()["error"]["code"] == "idempotency_in_progress"
    assert Transaction.objects.count() == 0
