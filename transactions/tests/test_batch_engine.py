"""The batch engine item by item, on whichever database runs the suite (SQL function or Python rules).

Each item of a batch is refused by the first rule it breaks, with the same
code and message on both databases; a refused item writes nothing while the
others are written; conversions refuse used and expired quotes; a replay is
the first answer byte for byte; the books verify after every batch.
"""

import pytest
from django.core.management import call_command

from events.models import Event, EventRecipient
from fx.rounding import rate_text
from fx.tests.helpers import customer_with_usd_and_ngn, expire, quote_for, usd_ngn_rate
from ledger.exceptions import BALANCE_LIMIT
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.services import account_freeze
from accounts.tests.factories import AdminFactory
from audit.models import AuditPending, AuditRecord
from transactions.engine.codes import ITEM_ERRORS, QUOTE_CURRENCIES
from transactions.batches import BatchItem, batch_create
from transactions.models import Batch, IdempotencyRecord, Transaction
from transactions.tests.concurrency import run_parallel
from transactions.tests.helpers import PIN, books, funded_account, new_key, user_with_pin
from transactions.verification import books_verify

pytestmark = pytest.mark.django_db


def _post(client, path, payload, key="k-1"):
    return client.post(f"/api/v1/{path}", payload, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _transfer(source, destination, amount, **extra):
    return {"type": "transfer", "source_account": str(source.pk), "destination_account": str(destination.pk),
            "amount": amount, **extra}


def _conversion(quote, source, destination):
    return {"type": "conversion", "quote": str(quote.pk), "source_account": str(source.pk),
            "destination_account": str(destination.pk)}


def _freeze(account):
    account_freeze(actor=AdminFactory(), account=account, reason="test")


def _verify_ledger():
    assert [result.name for result in books_verify() if not result.ok] == []
    call_command("verify_ledger")  # exits non-zero (SystemExit) on any breach


def _unfill(world) -> None:
    """Put the account the fixture set at the limit (without postings) back to its books, for verify_ledger."""
    LedgerAccount.objects.filter(pk=world[5].pk).update(posted=0)


def _error(name: str) -> dict:
    return ITEM_ERRORS[name]


@pytest.fixture
def world():
    """An owner with a funded USD account, other USD accounts in every state an item can meet."""
    owner = user_with_pin()
    source = funded_account(owner=owner, amount=1_000)
    other = funded_account(amount=0)
    frozen_mine = funded_account(owner=owner, amount=1_000)
    _freeze(frozen_mine)
    frozen_theirs = funded_account(amount=0)
    _freeze(frozen_theirs)
    full = funded_account(amount=0)
    LedgerAccount.objects.filter(pk=full.pk).update(posted=BALANCE_LIMIT)
    ngn = funded_account(owner=owner, amount=0, currency="NGN")
    stranger = funded_account(amount=1_000)
    return owner, source, other, frozen_mine, frozen_theirs, full, ngn, stranger


def _cases(world):
    """(item, the error it must meet: ITEM_ERRORS name) -- each item also breaks every later rule it can."""
    _owner, source, other, frozen_mine, frozen_theirs, full, ngn, stranger = world
    return [
        (_transfer(stranger, other, 5_000), "not_found"),  # not the caller's, and short
        (_transfer(source, source, 5_000), "same_account"),  # and short
        (_transfer(frozen_mine, ngn, 5_000), "currency_mismatch"),  # and frozen, and short
        (_transfer(frozen_mine, frozen_theirs, 5_000), "account_frozen:source"),  # and frozen destination, short
        (_transfer(source, frozen_theirs, 5_000), "account_frozen:destination"),  # and short
        (_transfer(source, full, 5_000), "insufficient_funds"),  # and over the limit
        (_transfer(source, full, 1), "balance_limit"),
        ({"type": "withdrawal", "account": str(frozen_mine.pk), "amount": 5_000}, "account_frozen:source"),
        ({"type": "deposit", "account": str(stranger.pk), "amount": 1}, "not_found"),  # not an admin's
        ({"type": "deposit", "account": str(full.pk), "amount": 1}, "not_found"),
    ]


def test_each_item_of_a_non_atomic_batch_meets_its_first_rule(client_for, world):
    owner, source, other, *_rest = world
    cases = _cases(world)
    # An item that passes between the refused ones: the refusals change nothing it sees.
    items = [item for item, _error_name in cases] + [_transfer(source, other, 1_000)]
    before = books()
    response = _post(client_for(owner), "batches", {"items": items, "atomic": False, "pin": PIN})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [result["error"] for result in body["results"][:-1]] == [_error(name) for _item, name in cases]
    assert body["results"][-1]["status"] == "ok"
    assert (body["status"], body["succeeded"], body["failed"]) == ("partial", 1, len(cases))
    source.refresh_from_db()
    assert source.posted == 0
    after = books()
    assert (after["entries"], after["postings"], after["idempotency"]) == (
        before["entries"] + 1, before["postings"] + 2, before["idempotency"] + 1
    )
    _unfill(world)
    _verify_ledger()


@pytest.mark.parametrize("index", range(10))
def test_an_atomic_batch_answers_its_first_refused_item(client_for, world, index):
    owner, source, other, *_rest = world
    cases = _cases(world)
    item, name = cases[index]
    before = books()
    response = _post(client_for(owner), "batches", {"items": [_transfer(source, other, 10), item], "pin": PIN})
    error = response.json()["error"]
    assert (error["code"], error["message"], error["index"]) == (_error(name)["code"], _error(name)["message"], 1)
    assert books() == before
    assert not Batch.objects.exists()


def test_a_refused_middle_item_writes_nothing_and_the_others_everything(client_for, world):
    owner, source, other, _frozen_mine, frozen_theirs, *_rest = world
    items = [
        {"type": "deposit", "account": str(source.pk), "amount": 500},
        _transfer(source, frozen_theirs, 10),
        _transfer(source, other, 1_500),  # needs the deposit
    ]
    counts = (Transaction.objects.count(), AuditRecord.objects.count(), AuditPending.objects.count(),
              Event.objects.count(), EventRecipient.objects.count())
    response = _post(client_for(owner), "batches", {"items": items, "atomic": False, "pin": PIN})
    body = response.json()
    assert [result["status"] for result in body["results"]] == ["ok", "failed", "ok"]
    made = Transaction.objects.filter(batch_id=body["id"]).order_by("created_at", "id")
    assert sorted(txn.type for txn in made) == ["deposit", "transfer"]
    assert all(txn.committed_at.isoformat().replace("+00:00", "Z") == body["created_at"] for txn in made)
    # Two transactions, their audit records queued, their events and the batch's (one recipient for the
    # deposit, two for the transfer, one for batch.created).
    assert (Transaction.objects.count(), AuditRecord.objects.filter(target_type="transaction").count() >= 2,
            Event.objects.count(), EventRecipient.objects.count()) == (
        counts[0] + 2, True, counts[3] + 3, counts[4] + 4
    )
    other.refresh_from_db()
    frozen_theirs.refresh_from_db()
    assert (other.posted, frozen_theirs.posted) == (1_500, 0)
    # The postings carry each account's balance after them, in item order.
    lines = list(Posting.objects.filter(account=source).order_by("id").values_list("amount", "balance_after"))
    assert lines[-2:] == [(500, 1_500), (-1_500, 0)]
    assert JournalEntry.objects.filter(ref_id__in=[txn.pk for txn in made]).count() == 2
    _unfill(world)
    _verify_ledger()


def test_replays_are_the_first_answer_byte_for_byte(client_for, world):
    owner, source, other, *_rest = world
    client = client_for(owner)
    payload = {"items": [_transfer(source, other, 5, metadata={"b": "2", "a": "1"}), _transfer(source, other, 9_999)],
               "atomic": False, "pin": PIN}
    first = _post(client, "batches", payload, key="bytes")
    replay = _post(client, "batches", payload, key="bytes")
    assert (first.status_code, replay.status_code, replay["Idempotent-Replayed"]) == (201, 201, "true")
    assert replay.content == first.content
    assert IdempotencyRecord.objects.get(key="bytes").response_body == first.json()


def test_a_conversion_replay_is_the_first_answer_byte_for_byte(client_for):
    usd_ngn_rate()
    owner, usd, ngn = customer_with_usd_and_ngn()
    client = client_for(owner)
    quote = quote_for(owner)
    payload = {"quote": str(quote.pk), "source_account": str(usd.pk), "destination_account": str(ngn.pk), "pin": PIN}
    first = _post(client, "conversions", payload, key="fx-bytes")
    replay = _post(client, "conversions", payload, key="fx-bytes")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.content == first.content
    assert first.json()["rate"] == rate_text(quote.rate)
    _verify_ledger()


def test_conversions_in_a_batch_refuse_a_used_and_an_expired_quote(client_for):
    usd_ngn_rate()
    owner, usd, ngn = customer_with_usd_and_ngn()
    quote = quote_for(owner)
    stale = quote_for(owner)
    expire(stale)
    items = [_conversion(quote, usd, ngn), _conversion(quote, usd, ngn), _conversion(stale, usd, ngn),
             _conversion(quote_for(owner), ngn, usd)]  # the accounts the wrong way round
    response = _post(client_for(owner), "batches", {"items": items, "atomic": False, "pin": PIN})
    assert response.status_code == 201
    results = response.json()["results"]
    assert results[0]["status"] == "ok"
    assert results[0]["transaction"]["quote"] == str(quote.pk)
    assert [result["error"] for result in results[1:]] == [
        _error("quote_expired:used"),
        _error("quote_expired"),
        {"code": "currency_mismatch", "message": QUOTE_CURRENCIES % ("USD", "NGN", "NGN", "USD")},
    ]
    quote.refresh_from_db()
    assert quote.used_at is not None
    usd.refresh_from_db()
    ngn.refresh_from_db()
    assert (usd.posted, ngn.posted) == (10_000 - quote.source_amount, quote.destination_amount)
    _verify_ledger()


def test_an_atomic_conversion_batch_with_a_used_quote_writes_nothing(client_for):
    usd_ngn_rate()
    owner, usd, ngn = customer_with_usd_and_ngn()
    quote = quote_for(owner)
    before = books()
    response = _post(client_for(owner), "batches",
                     {"items": [_conversion(quote, usd, ngn), _conversion(quote, usd, ngn)], "pin": PIN})
    assert response.status_code == 409
    assert response.json()["error"] == {**_error("quote_expired:used"), "index": 1}
    assert books() == before
    quote.refresh_from_db()
    assert quote.used_at is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_crossing_batches_of_every_kind_never_deadlock():
    """Batches that take system shards, quotes and customer accounts in opposite item orders."""
    usd_ngn_rate()
    owners = [customer_with_usd_and_ngn(usd=100_000) for _ in range(2)]

    def items(owner, usd, ngn, other_usd):
        quote = quote_for(owner, source_amount=100)
        return [
            BatchItem(type="deposit", account=usd.pk, amount=50),
            BatchItem(type="transfer", source_account=usd.pk, destination_account=other_usd.pk, amount=7),
            BatchItem(type="conversion", source_account=usd.pk, destination_account=ngn.pk, quote=quote.pk),
            BatchItem(type="withdrawal", account=usd.pk, amount=3),
        ]

    (a, a_usd, a_ngn), (b, b_usd, b_ngn) = owners
    calls = []
    for _round in range(3):
        for owner, usd, ngn, other in ((a, a_usd, a_ngn, b_usd), (b, b_usd, b_ngn, a_usd)):
            batch = items(owner, usd, ngn, other)
            for order in (batch, list(reversed(batch))):
                calls.append(lambda owner=owner, order=order: batch_create(
                    actor=owner, items=order, atomic=False, pin=PIN, idempotency_key=new_key()))
    results = run_parallel(calls)
    # Each quote is used by the first of its two batches to take it; the other one refuses it.
    assert [type(result).__name__ for result in results] == ["BatchOutcome"] * len(calls)
    applied = sorted(result.body["succeeded"] for result in results)
    assert applied == [3] * (len(calls) // 2) + [4] * (len(calls) // 2)
    assert [result.name for result in books_verify() if not result.ok] == []
