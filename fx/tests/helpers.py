"""Helpers for conversion tests: a rate, a customer with a funded USD account and an empty NGN one."""

from datetime import timedelta

from django.utils import timezone

from accounts.tests.factories import AdminFactory
from fx.models import FxQuote
from fx.services import quote_create, rate_set
from ledger.tests.factories import customer_account
from transactions.tests.helpers import funded_account, user_with_pin


def usd_ngn_rate(mid: str = "1500", spread_bps: int = 100):
    return rate_set(actor=AdminFactory(), base="USD", quote="NGN", mid=mid, spread_bps=spread_bps)


def customer_with_usd_and_ngn(usd: int = 10_000):
    owner = user_with_pin()
    return owner, funded_account(owner=owner, amount=usd), customer_account(owner=owner, currency="NGN")


def quote_for(owner, *, source_amount=1_000, source="USD", destination="NGN") -> FxQuote:
    return quote_create(actor=owner, source_currency=source, destination_currency=destination, source_amount=source_amount)


def expire(quote: FxQuote) -> None:
    FxQuote.objects.filter(pk=quote.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
