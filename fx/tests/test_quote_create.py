"""``quote_create`` priced from the rate this process read before: one statement, never a rate changed since."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import UserFactory
from fx import services
from fx.models import FxQuote, FxRate
from fx.tests.helpers import usd_ngn_rate
from ledgerx.exceptions import InvalidState, ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_rate_known():
    """Each test starts with no rate remembered by this process (another test's rows are gone)."""
    services._rates.clear()
    yield
    services._rates.clear()


def _quote(owner, source="USD", destination="NGN", **amounts) -> FxQuote:
    amounts = amounts or {"source_amount": 1_000}
    return services.quote_create(actor=owner, source_currency=source, destination_currency=destination, **amounts)


def _statements(owner, *direction, **amounts) -> tuple:
    """The quote, and how many statements it took."""
    with CaptureQueriesContext(connection) as queries:
        result = _quote(owner, *direction, **amounts)
    return result, len(queries.captured_queries)


def test_the_first_quote_reads_the_rate_and_the_next_ones_are_one_statement():
    usd_ngn_rate(mid="1500", spread_bps=100)
    owner = UserFactory()
    first, statements = _statements(owner)
    assert statements == 2
    # Either direction of the pair, either side given: the one row read before.
    for amounts, direction in (
        ({"source_amount": 1_000}, ("USD", "NGN")),
        ({"source_amount": 100_000}, ("NGN", "USD")),
        ({"destination_amount": 100}, ("NGN", "USD")),
    ):
        quote, statements = _statements(owner, *direction, **amounts)
        assert statements == 1
        stored = FxQuote.objects.get(pk=quote.pk)
        assert [getattr(stored, f.attname) for f in FxQuote._meta.concrete_fields] == [
            getattr(quote, f.attname) for f in FxQuote._meta.concrete_fields
        ]
    assert (first.destination_amount, first.rate, first.mid, first.spread_bps) == (1_485_000, Decimal("1485"), 1500, 100)
    # The same amounts as the rate read afresh: 1000.00 NGN at (1/1500) x 0.99 buys 0.66 USD; 1.00 USD costs 1515.16 NGN.
    assert FxQuote.objects.filter(source_currency="NGN", given="source").get().destination_amount == 66
    assert FxQuote.objects.filter(source_currency="NGN", given="destination").get().source_amount == 151_516


def test_a_rate_changed_since_it_was_read_is_not_quoted():
    usd_ngn_rate(mid="1500", spread_bps=100)
    owner = UserFactory()
    _quote(owner)
    usd_ngn_rate(mid="1600", spread_bps=50)  # by another process: this one still remembers 1500
    quote, statements = _statements(owner)
    assert statements == 3  # the refused insert, the read, the insert
    assert (quote.mid, quote.spread_bps, quote.destination_amount) == (1600, 50, 1_592_000)
    assert FxQuote.objects.get(pk=quote.pk).rate == Decimal("1592")
    assert FxQuote.objects.count() == 2


def test_a_rate_entered_the_other_way_round_since_is_not_quoted():
    usd_ngn_rate(mid="1500", spread_bps=100)
    owner = UserFactory()
    _quote(owner)
    services.rate_set(actor=None, base="NGN", quote="USD", mid="0.0005", spread_bps=0)
    quote = _quote(owner)
    assert (quote.destination_amount, quote.rate) == (2_000_000, Decimal("2000"))


def test_a_rate_gone_stale_since_it_was_read_refuses_the_quote():
    usd_ngn_rate()
    owner = UserFactory()
    _quote(owner)
    FxRate.objects.update(updated_at=timezone.now() - timedelta(days=2))
    with pytest.raises(InvalidState, match="rate is stale"):
        _quote(owner)
    assert FxQuote.objects.count() == 1


def test_a_remembered_rate_older_than_the_maximum_age_is_read_again(settings):
    usd_ngn_rate()
    owner = UserFactory()
    _quote(owner)
    settings.FX_MAX_AGE = timedelta(0)
    with pytest.raises(InvalidState, match="rate is stale"):
        _quote(owner)
    assert FxQuote.objects.count() == 1


def test_a_rate_deleted_since_it_was_read_refuses_the_quote():
    usd_ngn_rate()
    owner = UserFactory()
    _quote(owner)
    FxRate.objects.all().delete()
    with pytest.raises(InvalidState, match="no rate"):
        _quote(owner)
    assert FxQuote.objects.count() == 1


def test_an_amount_refused_at_the_remembered_rate_is_judged_at_the_rate_as_it_is():
    usd_ngn_rate(mid="1500", spread_bps=100)
    owner = UserFactory()
    _quote(owner)
    with pytest.raises(ValidationFailed):
        _quote(owner, "NGN", "USD", source_amount=1)  # 1 kobo buys no cent at 1500
    usd_ngn_rate(mid="0.5", spread_bps=0)
    assert _quote(owner, "NGN", "USD", source_amount=1).destination_amount == 2
