"""The Idempotency-Key header on every money-moving POST: one rule, checked by the services.

A missing or empty key is 400 ``idempotency_key_required``; a malformed one is
400 ``validation_error`` naming the header. Either way nothing is written.
"""

import pytest

from fx.tests.helpers import customer_with_usd_and_ngn, quote_for, usd_ngn_rate
from ledger.tests.factories import customer_account
from transactions.tests.helpers import PIN, books, funded_account

pytestmark = pytest.mark.django_db

REQUIRED = {
    "error": {
        "code": "idempotency_key_required",
        "message": "Send an Idempotency-Key header (1-255 printable characters) with money-moving requests.",
    }
}
MALFORMED = {
    "error": {
        "code": "validation_error",
        "message": "The Idempotency-Key header must be 1-255 printable ASCII characters.",
        "fields": {"Idempotency-Key": ["Must be 1-255 printable ASCII characters."]},
    }
}


def _deposit():
    account = funded_account(amount=0)
    return account.owner, "deposits", {"account": str(account.pk), "amount": 5}


def _withdrawal():
    account = funded_account(amount=100)
    return account.owner, "withdrawals", {"account": str(account.pk), "amount": 5, "pin": PIN}


def _transfer():
    source = funded_account(amount=100)
    destination = customer_account()
    body = {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 5, "pin": PIN}
    return source.owner, "transfers", body


def _conversion():
    usd_ngn_rate()
    owner, usd, ngn = customer_with_usd_and_ngn()
    quote = quote_for(owner)
    body = {"quote": str(quote.pk), "source_account": str(usd.pk), "destination_account": str(ngn.pk), "pin": PIN}
    return owner, "conversions", body


def _batch():
    account = funded_account(amount=0)
    return account.owner, "batches", {"items": [{"type": "deposit", "account": str(account.pk), "amount": 5}]}


REQUESTS = [_deposit, _withdrawal, _transfer, _conversion, _batch]


@pytest.mark.parametrize("request_of", REQUESTS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize(
    "headers, status, answer",
    [
        ({}, 400, REQUIRED),
        ({"HTTP_IDEMPOTENCY_KEY": ""}, 400, REQUIRED),
        ({"HTTP_IDEMPOTENCY_KEY": "x" * 256}, 400, MALFORMED),
        ({"HTTP_IDEMPOTENCY_KEY": "tab\there"}, 400, MALFORMED),
    ],
    ids=["missing", "empty", "too-long", "unprintable"],
)
def test_a_money_post_without_a_usable_key_is_refused_and_writes_nothing(client_for, request_of, headers, status, answer):
    user, path, body = request_of()
    before = books()
    response = client_for(user).post(f"/api/v1/{path}", body, format="json", **headers)
    assert (response.status_code, response.json()) == (status, answer)
    assert books() == before
