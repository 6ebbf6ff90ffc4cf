"""Quotes and conversions over HTTP, on both databases: the contract's "Currency conversion" section."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import AdminFactory, UserFactory
from audit.models import AuditRecord
from events.models import Event
from fx.models import FxQuote, FxRate
from fx.tests.helpers import customer_with_usd_and_ngn, expire, quote_for, usd_ngn_rate
from ledger.models import LedgerAccount
from ledger.selectors import system_balance
from ledger.services.customer_accounts import account_freeze
from ledger.tests.factories import customer_account
from transactions.models import IdempotencyRecord, Transaction
from transactions.services.reversals import transaction_reverse
from transactions.tests.helpers import PIN, books, user_with_pin
from transactions.verification import books_verify

pytestmark = pytest.mark.django_db


def _verify_ledger():
    assert [result.name for result in books_verify() if not result.ok] == []


def _posted(account) -> int:
    return LedgerAccount.objects.get(pk=account.pk).posted


def _convert(client, quote, source, destination, key="c-1", pin=PIN):
    body = {"quote": str(quote.pk), "source_account": str(source.pk), "destination_account": str(destination.pk), "pin": pin}
    return client.post("/api/v1/conversions", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.fixture
def rate():
    return usd_ngn_rate()


@pytest.fixture
def customer(rate):
    return customer_with_usd_and_ngn()


# --- Quotes ---------------------------------------------------------------------------


def test_a_quote_for_the_source_amount_rounds_the_destination_down(client_for, customer):
    owner = customer[0]
    response = client_for(owner).post(
        "/api/v1/fx/quotes", {"source_currency": "NGN", "destination_currency": "USD", "source_amount": 100_000}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    # 1000.00 NGN at (1/1500) x 0.99 = 0.00066 buys 0.66 USD.
    assert {k: body[k] for k in ("source_currency", "destination_currency", "source_amount", "destination_amount", "rate")} == {
        "source_currency": "NGN", "destination_currency": "USD", "source_amount": 100_000, "destination_amount": 66,
        "rate": "0.00066",
    }
    quote = FxQuote.objects.get(pk=body["id"])
    assert quote.user == owner and quote.used_at is None
    assert quote.expires_at - quote.created_at >= timedelta(seconds=30)


def test_a_quote_for_the_destination_amount_rounds_the_source_up(client_for, customer):
    response = client_for(customer[0]).post(
        "/api/v1/fx/quotes", {"source_currency": "NGN", "destination_currency": "USD", "destination_amount": 100}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert (response.json()["source_amount"], response.json()["destination_amount"]) == (151_516, 100)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"source_currency": "USD", "destination_currency": "NGN"}, "source_amount"),
        ({"source_currency": "USD", "destination_currency": "NGN", "source_amount": 1, "destination_amount": 1}, "source_amount"),
        ({"source_currency": "USD", "destination_currency": "USD", "source_amount": 100}, "destination_currency"),
        ({"source_currency": "XXX", "destination_currency": "NGN", "source_amount": 100}, "source_currency"),
        ({"source_currency": "USD", "destination_currency": "NGN", "source_amount": 10.5}, "source_amount"),
        # 1 kobo is worth less than a cent: nothing to receive.
        ({"source_currency": "NGN", "destination_currency": "USD", "source_amount": 1}, "source_amount"),
    ],
)
def test_a_bad_quote_request_is_a_400(client_for, customer, body, field):
    response = client_for(customer[0]).post("/api/v1/fx/quotes", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]
    assert FxQuote.objects.count() == 0


def test_a_pair_without_a_rate_is_409(client_for, customer):
    response = client_for(customer[0]).post(
        "/api/v1/fx/quotes", {"source_currency": "GBP", "destination_currency": "EUR", "source_amount": 100}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"


def test_a_stale_rate_refuses_new_quotes(client_for, customer, settings):
    FxRate.objects.update(updated_at=timezone.now() - settings.FX_MAX_AGE - timedelta(seconds=1))
    response = client_for(customer[0]).post(
        "/api/v1/fx/quotes", {"source_currency": "USD", "destination_currency": "NGN", "source_amount": 100}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"
    assert "rate is stale" in response.json()["error"]["message"]
    assert FxQuote.objects.count() == 0


# --- Conversions --------------------------------------------------------------------------


def test_a_conversion_moves_both_legs_through_the_pools(client_for, customer):
    owner, usd, ngn = customer
    quote = quote_for(owner, source_amount=1_000)  # 10.00 USD at 1485 -> 14,850.00 NGN
    response = _convert(client_for(owner), quote, usd, ngn)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: body[k] for k in ("type", "status", "amount", "currency", "source_amount", "destination_amount",
                                  "destination_currency", "rate", "quote", "source_account", "destination_account")} == {
        "type": "conversion", "status": "committed", "amount": 1_000, "currency": "USD", "source_amount": 1_000,
        "destination_amount": 1_485_000, "destination_currency": "NGN", "rate": "1485", "quote": str(quote.pk),
        "source_account": str(usd.pk), "destination_account": str(ngn.pk),
    }
    assert (_posted(usd), _posted(ngn)) == (9_000, 1_485_000)
    assert system_balance(currency="USD", role="fx_pool") == 1_000
    assert system_balance(currency="NGN", role="fx_pool") == -1_485_000
    txn = Transaction.objects.get(pk=body["id"])
    postings = sorted(txn.entry.postings.values_list("currency", "amount"))
    assert postings == [("NGN", -1_485_000), ("NGN", 1_485_000), ("USD", -1_000), ("USD", 1_000)]
    assert FxQuote.objects.get(pk=quote.pk).used_at is not None
    assert AuditRecord.objects.filter(action="transaction.conversion", target_id=str(txn.pk)).count() == 1
    created = Event.objects.get(type="transaction.created", data__id=str(txn.pk))
    assert created.data["destination_amount"] == 1_485_000
    assert IdempotencyRecord.objects.get(endpoint="conversions").transaction_id == txn.pk
    # Read back like any transaction, and the statement of each side shows its leg.
    client = client_for(owner)
    assert client.get(f"/api/v1/transactions/{txn.pk}").json() == body
    assert client.get(f"/api/v1/accounts/{ngn.pk}").json()["balance"]["posted"] == 1_485_000
    assert [t["id"] for t in client.get("/api/v1/transactions?type=conversion").json()["results"]] == [body["id"]]
    entries = client.get(f"/api/v1/accounts/{ngn.pk}/entries").json()["results"]
    assert [(e["type"], e["amount"]) for e in entries] == [("conversion", 1_485_000)]
    assert [e["type"] for e in client.get("/api/v1/events?type=transaction.created").json()["results"]][0] == "transaction.created"
    _verify_ledger()


def test_a_replay_returns_the_same_conversion_and_moves_nothing(client_for, customer):
    owner, usd, ngn = customer
    quote = quote_for(owner)
    first = _convert(client_for(owner), quote, usd, ngn, key="same")
    again = _convert(client_for(owner), quote, usd, ngn, key="same")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Transaction.objects.filter(type="conversion").count() == 1
    assert _posted(usd) == 9_000
    other = _convert(client_for(owner), quote_for(owner), usd, ngn, key="same")
    assert other.status_code == 422


def _refused(client, quote, source, destination, status, code):
    before = books()
    response = _convert(client, quote, source, destination, key=f"refused-{code}")
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert "index" not in response.json()["error"]
    assert books() == before
    _verify_ledger()
    return response


def test_a_used_quote_is_refused(client_for, customer):
    owner, usd, ngn = customer
    quote = quote_for(owner)
    assert _convert(client_for(owner), quote, usd, ngn, key="first").status_code == 201
    _refused(client_for(owner), quote, usd, ngn, 409, "quote_expired")


def test_an_expired_quote_is_refused(client_for, customer):
    owner, usd, ngn = customer
    quote = quote_for(owner)
    expire(quote)
    _refused(client_for(owner), quote, usd, ngn, 409, "quote_expired")
    assert FxQuote.objects.get(pk=quote.pk).used_at is None


def test_insufficient_funds(client_for, customer):
    owner, usd, ngn = customer
    _refused(client_for(owner), quote_for(owner, source_amount=10_001), usd, ngn, 409, "insufficient_funds")


@pytest.mark.parametrize("side", ["source", "destination"])
def test_a_frozen_account_on_either_side_is_refused(client_for, customer, side):
    owner, usd, ngn = customer
    account_freeze(actor=AdminFactory(), account=usd if side == "source" else ngn, reason="test")
    response = _refused(client_for(owner), quote_for(owner), usd, ngn, 409, "account_frozen")
    assert side in response.json()["error"]["message"]


def test_accounts_not_in_the_quotes_currencies_are_a_currency_mismatch(client_for, customer):
    owner, usd, ngn = customer
    gbp = customer_account(owner=owner, currency="GBP")
    _refused(client_for(owner), quote_for(owner), usd, gbp, 400, "currency_mismatch")
    # The quote was not spent by the refusal.
    assert _convert(client_for(owner), FxQuote.objects.get(), usd, ngn, key="after").status_code == 201


def test_a_quote_or_an_account_of_someone_else_is_not_found(client_for, customer):
    owner, usd, ngn = customer
    stranger = user_with_pin()
    _refused(client_for(stranger), quote_for(owner), customer_account(owner=stranger), customer_account(owner=stranger, currency="NGN"), 404, "not_found")
    # Both accounts must be the caller's: converting into someone else's account is a 404 too.
    _refused(client_for(owner), quote_for(owner), usd, customer_account(owner=stranger, currency="NGN"), 404, "not_found")


def test_a_wrong_pin_moves_nothing(client_for, customer):
    owner, usd, ngn = customer
    quote = quote_for(owner)
    response = _convert(client_for(owner), quote, usd, ngn, pin="9999")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_pin"
    assert FxQuote.objects.get(pk=quote.pk).used_at is None


def test_a_reversal_undoes_both_legs_at_the_recorded_rate(client_for, customer):
    owner, usd, ngn = customer
    # The rate moves after the conversion: the reversal still uses what was booked.
    body = _convert(client_for(owner), quote_for(owner, source_amount=1_000), usd, ngn).json()
    usd_ngn_rate(mid="1700", spread_bps=10)
    original = Transaction.objects.get(pk=body["id"])
    reversal = transaction_reverse(actor=AdminFactory(), transaction=original, reason="customer asked")
    assert (_posted(usd), _posted(ngn)) == (10_000, 0)
    assert system_balance(currency="USD", role="fx_pool") == 0
    assert system_balance(currency="NGN", role="fx_pool") == 0
    assert (reversal.amount, reversal.currency, reversal.source_amount, reversal.destination_amount, reversal.rate) == (
        1_485_000, "NGN", 1_485_000, 1_000, original.rate,
    )
    assert Transaction.objects.get(pk=original.pk).status == "reversed"
    _verify_ledger()


def test_a_reversal_is_refused_when_the_destination_spent_the_money(client_for, customer):
    owner, usd, ngn = customer
    body = _convert(client_for(owner), quote_for(owner), usd, ngn).json()
    assert _convert(client_for(owner), quote_for(owner, source="NGN", destination="USD", source_amount=1_485_000), ngn, usd, key="back").status_code == 201
    response = client_for(AdminFactory()).post(
        f"/api/v1/admin/transactions/{body['id']}/reverse", {"reason": "test"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_funds"
    _verify_ledger()


# --- Batches ----------------------------------------------------------------------------------


def test_a_conversion_is_an_item_of_a_batch(client_for, rate):
    owner = user_with_pin()
    usd, ngn = customer_account(owner=owner), customer_account(owner=owner, currency="NGN")
    quote = quote_for(owner, source_amount=500)
    body = {
        "pin": PIN,
        "items": [
            {"type": "deposit", "account": str(usd.pk), "amount": 500},  # funds the conversion after it
            {"type": "conversion", "quote": str(quote.pk), "source_account": str(usd.pk), "destination_account": str(ngn.pk)},
        ],
    }
    response = client_for(owner).post("/api/v1/batches", body, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    assert response.status_code == 201, response.json()
    batch = response.json()
    conversion = batch["results"][1]["transaction"]
    assert (conversion["type"], conversion["destination_amount"], conversion["batch"]) == ("conversion", 742_500, batch["id"])
    assert (_posted(usd), _posted(ngn)) == (0, 742_500)
    _verify_ledger()


def test_one_quote_twice_in_a_batch_converts_once(client_for, customer):
    owner, usd, ngn = customer
    quote = quote_for(owner)
    item = {"type": "conversion", "quote": str(quote.pk), "source_account": str(usd.pk), "destination_account": str(ngn.pk)}
    response = client_for(owner).post(
        "/api/v1/batches", {"pin": PIN, "atomic": False, "items": [item, item]}, format="json", HTTP_IDEMPOTENCY_KEY="b-2"
    )
    assert response.status_code == 201
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["ok", "failed"]
    assert results[1]["error"]["code"] == "quote_expired"
    assert _posted(usd) == 9_000
    atomic = client_for(owner).post(
        "/api/v1/batches", {"pin": PIN, "items": [item]}, format="json", HTTP_IDEMPOTENCY_KEY="b-3"
    )
    assert (atomic.status_code, atomic.json()["error"]["code"], atomic.json()["error"]["index"]) == (409, "quote_expired", 0)
    _verify_ledger()


@pytest.mark.parametrize(
    "item,field",
    [
        ({"type": "conversion", "source_account": "00000000-0000-0000-0000-000000000001",
          "destination_account": "00000000-0000-0000-0000-000000000002"}, "items.0.quote"),
        ({"type": "conversion", "quote": "00000000-0000-0000-0000-000000000003", "amount": 5,
          "source_account": "00000000-0000-0000-0000-000000000001",
          "destination_account": "00000000-0000-0000-0000-000000000002"}, "items.0.amount"),
        ({"type": "transfer", "source_account": "00000000-0000-0000-0000-000000000001",
          "destination_account": "00000000-0000-0000-0000-000000000002"}, "items.0.amount"),
    ],
)
def test_a_malformed_conversion_item_is_a_400(client_for, customer, item, field):
    response = client_for(customer[0]).post(
        "/api/v1/batches", {"pin": PIN, "items": [item]}, format="json", HTTP_IDEMPOTENCY_KEY="b-4"
    )
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"], response.json()


# --- Rates (admin) -------------------------------------------------------------------------


def test_admins_set_and_list_rates_audited(client_for):
    admin = AdminFactory()
    client = client_for(admin)
    response = client.put("/api/v1/admin/fx-rates", {"base": "USD", "quote": "NGN", "mid": "1532.75", "spread_bps": 50}, format="json")
    assert response.status_code == 200, response.json()
    assert {k: response.json()[k] for k in ("base", "quote", "mid", "spread_bps")} == {
        "base": "USD", "quote": "NGN", "mid": "1532.75", "spread_bps": 50,
    }
    # The same pair the other way round replaces it: one row per pair.
    client.put("/api/v1/admin/fx-rates", {"base": "NGN", "quote": "USD", "mid": "0.00065", "spread_bps": 40}, format="json")
    listed = client.get("/api/v1/admin/fx-rates").json()
    assert [(r["base"], r["quote"], r["mid"], r["spread_bps"]) for r in listed] == [("NGN", "USD", "0.00065", 40)]
    records = AuditRecord.objects.filter(action="fx.rate_set").order_by("at")
    assert [(r.actor_id, r.data["new"]["mid"]) for r in records] == [(admin.pk, "1532.75"), (admin.pk, "0.00065")]
    assert records[1].data["old"]["mid"] == "1532.75"
    assert FxRate.objects.get().updated_by == admin


@pytest.mark.parametrize(
    "body,field",
    [
        ({"base": "USD", "quote": "NGN", "mid": 1500, "spread_bps": 50}, "mid"),
        ({"base": "USD", "quote": "NGN", "mid": "-1", "spread_bps": 50}, "mid"),
        ({"base": "USD", "quote": "NGN", "mid": "1.0000000000000001", "spread_bps": 50}, "mid"),
        # More digits than any context would keep: refused, never rounded to 1.
        ({"base": "USD", "quote": "NGN", "mid": "1.00000000000000000000000000000001", "spread_bps": 50}, "mid"),
        ({"base": "USD", "quote": "NGN", "mid": "0.000000001", "spread_bps": 50}, "mid"),
        ({"base": "USD", "quote": "NGN", "mid": "NaN", "spread_bps": 50}, "mid"),
        ({"base": "USD", "quote": "NGN", "mid": "1500", "spread_bps": "50"}, "spread_bps"),
        ({"base": "USD", "quote": "NGN", "mid": "1500", "spread_bps": 10_000}, "spread_bps"),
        ({"base": "USD", "quote": "USD", "mid": "1", "spread_bps": 0}, "quote"),
    ],
)
def test_a_bad_rate_is_a_400(client_for, body, field):
    response = client_for(AdminFactory()).put("/api/v1/admin/fx-rates", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"], response.json()
    assert FxRate.objects.count() == 0


def test_customers_cannot_touch_rates(client_for):
    client = client_for(UserFactory())
    assert client.get("/api/v1/admin/fx-rates").status_code == 403
    response = client.put("/api/v1/admin/fx-rates", {"base": "USD", "quote": "NGN", "mid": "1", "spread_bps": 0}, format="json")
    assert response.status_code == 403
    assert FxRate.objects.count() == 0


# --- Other exponents, and the refusal order ----------------------------------------------------


def test_jpy_to_kwd_end_to_end_with_their_iso_exponents(client_for, settings):
    settings.CURRENCIES = {**settings.CURRENCIES, "JPY": 0, "KWD": 3}
    from fx.services import rate_set
    from transactions.services.money import deposit_create
    from transactions.tests.helpers import new_key

    rate_set(actor=AdminFactory(), base="KWD", quote="JPY", mid="500", spread_bps=0)  # so JPY -> KWD is 0.002
    owner = user_with_pin()
    jpy, kwd = customer_account(owner=owner, currency="JPY"), customer_account(owner=owner, currency="KWD")
    deposit_create(actor=owner, account=jpy, amount=10_000, idempotency_key=new_key())  # 10,000 JPY
    client = client_for(owner)
    quote = client.post(
        "/api/v1/fx/quotes", {"source_currency": "JPY", "destination_currency": "KWD", "source_amount": 1_234}, format="json"
    ).json()
    assert (quote["rate"], quote["destination_amount"]) == ("0.002", 2_468)  # 2.468 KWD, in fils
    response = _convert(client, FxQuote.objects.get(pk=quote["id"]), jpy, kwd)
    assert response.status_code == 201, response.json()
    assert (_posted(jpy), _posted(kwd)) == (10_000 - 1_234, 2_468)
    _verify_ledger()


def test_a_mismatch_answers_before_an_expired_quote_and_that_before_a_frozen_account(client_for, customer):
    owner, usd, ngn = customer
    quote = quote_for(owner, source_amount=1_000_000)  # more than the account holds, too
    expire(quote)
    account_freeze(actor=AdminFactory(), account=usd, reason="test")
    gbp = customer_account(owner=owner, currency="GBP")
    _refused(client_for(owner), quote, usd, gbp, 400, "currency_mismatch")
    _refused(client_for(owner), quote, usd, ngn, 409, "quote_expired")


def test_the_database_refuses_a_conversion_without_its_legs(customer):
    from django.db import IntegrityError, transaction

    owner, usd, ngn = customer
    with pytest.raises(IntegrityError), transaction.atomic():
        Transaction.objects.create(
            type="conversion", status="committed", amount=100, currency="USD", source_account=usd, destination_account=ngn
        )


def test_a_conversion_is_counted_like_any_movement(client_for, customer, django_capture_on_commit_callbacks):
    from prometheus_client import REGISTRY

    def counted(name):
        return REGISTRY.get_sample_value(name, {"type": "conversion", "currency": "USD"}) or 0.0

    owner, usd, ngn = customer
    before = (counted("ledgerx_movements_total"), counted("ledgerx_moved_minor_units_total"))
    with django_capture_on_commit_callbacks(execute=True):
        assert _convert(client_for(owner), quote_for(owner, source_amount=1_000), usd, ngn).status_code == 201
    assert (counted("ledgerx_movements_total"), counted("ledgerx_moved_minor_units_total")) == (before[0] + 1, before[1] + 1_000)


def test_the_worker_purges_old_unused_quotes_and_keeps_used_ones(client_for, customer):
    from events.worker.loop import _periodic_tasks
    from fx.services import QUOTE_RETENTION, quote_purge

    owner, usd, ngn = customer
    used, old, fresh = quote_for(owner), quote_for(owner), quote_for(owner)
    assert _convert(client_for(owner), used, usd, ngn).status_code == 201
    long_ago = timezone.now() - QUOTE_RETENTION - timedelta(minutes=1)
    FxQuote.objects.filter(pk__in=[used.pk, old.pk]).update(expires_at=long_ago)
    assert quote_purge() == 1
    assert set(FxQuote.objects.values_list("pk", flat=True)) == {used.pk, fresh.pk}
    assert ("purge_fx_quotes", 3600, quote_purge) in _periodic_tasks()


def test_the_service_takes_a_quote_id_as_text_too(customer):
    from transactions.services.money import conversion_create
    from transactions.tests.helpers import new_key

    owner, usd, ngn = customer
    quote = quote_for(owner)
    outcome = conversion_create(actor=owner, quote_id=str(quote.pk), source=usd, destination=ngn, pin=PIN, idempotency_key=new_key())
    assert outcome.transaction.quote_id == quote.pk
    from ledgerx.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed):
        conversion_create(actor=owner, quote_id="nope", source=usd, destination=ngn, pin=PIN, idempotency_key=new_key())
