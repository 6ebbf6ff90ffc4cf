"""One quote used by parallel conversions on real PostgreSQL: the money moves once."""

import pytest

from fx.tests.helpers import customer_with_usd_and_ngn, quote_for, usd_ngn_rate
from ledger.models import LedgerAccount
from ledger.tests.factories import customer_account
from transactions.services.money import conversion_create
from transactions.tests.concurrency import run_parallel
from transactions.tests.helpers import PIN, new_key
from transactions.verification import books_verify

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_parallel_conversions_of_one_quote_move_the_money_once():
    usd_ngn_rate()
    owner, usd, ngn = customer_with_usd_and_ngn(usd=10_000)
    # A second pair of accounts too, so not every racer waits on the same account rows.
    usd_2, ngn_2 = customer_account(owner=owner), customer_account(owner=owner, currency="NGN")
    from transactions.services.money import deposit_create

    deposit_create(actor=owner, account=usd_2, amount=10_000, idempotency_key=new_key())
    quote = quote_for(owner, source_amount=1_000)

    def convert(source, destination):
        return lambda: conversion_create(
            actor=owner, quote_id=quote.pk, source=source, destination=destination, pin=PIN, idempotency_key=new_key()
        )

    results = run_parallel([convert(usd, ngn), convert(usd_2, ngn_2)] * 4)
    won = [r for r in results if not isinstance(r, Exception)]
    assert len(won) == 1, results
    assert {getattr(r, "code", repr(r)) for r in results if isinstance(r, Exception)} == {"quote_expired"}
    posted = {a.pk: a.posted for a in LedgerAccount.objects.filter(pk__in=[usd.pk, usd_2.pk, ngn.pk, ngn_2.pk])}
    assert sorted([posted[usd.pk], posted[usd_2.pk]]) == [9_000, 10_000]
    assert sorted([posted[ngn.pk], posted[ngn_2.pk]]) == [0, 1_485_000]
    assert [result.name for result in books_verify() if not result.ok] == []
