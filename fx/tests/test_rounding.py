"""The one rounding rule, over random rates, amounts and every pair of exponents (ISO: 0, 2, 3)."""

from decimal import Decimal
from fractions import Fraction
from itertools import product

import pytest
from django.conf import settings as django_settings
from hypothesis import given, settings, strategies as st

from fx import rounding
from fx.services import mid_parse

# Every exponent configured, and ISO's others in use (JPY 0, KWD 3) whether configured or not.
EXPONENTS = sorted(set(django_settings.CURRENCIES.values()) | {0, 2, 3})
PAIRS = list(product(EXPONENTS, repeat=2))



@st.composite
def mids(draw):
    """Mid rates as the API takes them: 1 to 15 significant digits, leading digit from 10^-8 to 10^7."""
    significant = draw(st.integers(min_value=1, max_value=15))
    digits = draw(st.integers(min_value=10 ** (significant - 1), max_value=10**significant - 1))
    leading = draw(st.integers(min_value=-8, max_value=7))
    return Decimal(digits).scaleb(leading - significant + 1)


spreads = st.integers(min_value=0, max_value=5000)
amounts = st.integers(min_value=1, max_value=10**15)


@pytest.mark.parametrize("source_exponent,destination_exponent", PAIRS)
@settings(max_examples=150, deadline=None)
@given(mid=mids(), spread_bps=spreads, inverse=st.booleans(), amount=amounts)
def test_given_the_source_the_destination_is_rounded_down_by_less_than_one_unit(
    source_exponent, destination_exponent, mid, spread_bps, inverse, amount
):
    rate = rounding.rate_applied(mid=mid, spread_bps=spread_bps, inverse=inverse)
    exponents = {"source_exponent": source_exponent, "destination_exponent": destination_exponent}
    received = rounding.destination_for(source_amount=amount, rate=rate, **exponents)
    exact = rounding.destination_exact(source_amount=amount, rate=rate, **exponents)
    assert received <= exact  # the house never pays out more than the money buys
    assert exact - received < 1  # the customer loses less than one minor unit


@pytest.mark.parametrize("source_exponent,destination_exponent", PAIRS)
@settings(max_examples=150, deadline=None)
@given(mid=mids(), spread_bps=spreads, inverse=st.booleans(), amount=amounts)
def test_given_the_destination_the_source_is_rounded_up_by_less_than_one_unit(
    source_exponent, destination_exponent, mid, spread_bps, inverse, amount
):
    rate = rounding.rate_applied(mid=mid, spread_bps=spread_bps, inverse=inverse)
    exponents = {"source_exponent": source_exponent, "destination_exponent": destination_exponent}
    paid = rounding.source_for(destination_amount=amount, rate=rate, **exponents)
    exact_price = Fraction(amount) / (Fraction(rate) * Fraction(10) ** (destination_exponent - source_exponent))
    assert paid >= exact_price  # what the customer pays buys at least what they receive: the house never loses
    assert paid - exact_price < 1  # and they pay less than one minor unit too much
    assert rounding.destination_exact(source_amount=paid, rate=rate, **exponents) >= amount


@settings(max_examples=300, deadline=None)
@given(mid=mids(), spread_bps=spreads, inverse=st.booleans())
def test_the_recorded_rate_never_exceeds_the_exact_one_and_keeps_fifteen_digits(mid, spread_bps, inverse):
    assert mid_parse(format(mid, "f")) == mid  # every mid drawn here is one the API accepts
    rate = rounding.rate_applied(mid=mid, spread_bps=spread_bps, inverse=inverse)
    exact = rounding.rate_mid(mid=mid, inverse=inverse) * Fraction(10_000 - spread_bps, 10_000)
    assert Fraction(rate) <= exact
    assert (exact - Fraction(rate)) / exact < Fraction(1, 10**14)
    assert len(rate.as_tuple().digits) <= rounding.RATE_DIGITS
    # What SQLite's REAL column and PostgreSQL's numeric both keep exactly.
    assert Decimal(repr(float(rate))) == rate


def test_known_values():
    usd_ngn = Decimal("1500")
    rate = rounding.rate_applied(mid=usd_ngn, spread_bps=100, inverse=False)
    assert rate == Decimal("1485")
    assert rounding.destination_for(source_amount=1_000, rate=rate, source_exponent=2, destination_exponent=2) == 1_485_000
    back = rounding.rate_applied(mid=usd_ngn, spread_bps=100, inverse=True)
    assert back == Decimal("0.000660000000000000")
    # 1000.00 NGN buys 0.66 USD; getting 1.00 USD costs 1515.16 NGN (1515.1515... rounded up).
    assert rounding.destination_for(source_amount=100_000, rate=back, source_exponent=2, destination_exponent=2) == 66
    assert rounding.source_for(destination_amount=100, rate=back, source_exponent=2, destination_exponent=2) == 151_516
    # JPY (0) to KWD (3) at 0.002: 1234 JPY -> 2.468 KWD.
    assert rounding.destination_for(
        source_amount=1_234, rate=Decimal("0.002"), source_exponent=0, destination_exponent=3
    ) == 2_468
    assert rounding.rate_text(Decimal("1485.000000000000000000000000000000")) == "1485"
    assert rounding.rate_text(Decimal("0.000660000000000000")) == "0.00066"
