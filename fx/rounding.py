"""The one rounding rule of currency conversion: the house never loses a minor unit, the customer never loses more than one.

Everything is exact: rates are ``Decimal``, amounts integers of minor units,
and the arithmetic runs on ``fractions.Fraction`` (never a float, never a
context precision that could round silently). Three steps, each rounded
towards the house:

1. ``rate_applied``: the rate a quote records, ``mid x (1 - spread)`` one way
   and ``(1 / mid) x (1 - spread)`` the other, rounded DOWN to
   ``RATE_DIGITS`` significant digits. Fifteen digits are enough for any
   ratio between real currencies (NGN/KWD, JPY/USD) and survive SQLite's
   REAL storage exactly, so both databases keep the same rate.
2. ``destination_for``: given what the customer pays, what they get is
   ``source x rate`` in the destination's minor units, rounded DOWN.
3. ``source_for``: given what the customer wants, what they pay is
   ``destination / rate`` in the source's minor units, rounded UP.

So at the recorded rate the customer never receives more than their money
buys (the house never loses), and the side that was computed is less than one
of its minor units away from the exact value (the customer loses less than
one). ``fx/tests/test_rounding.py`` checks both with hypothesis over random
rates, amounts and every pair of exponents.
"""

import math
from decimal import ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction

RATE_DIGITS = 15  # significant digits of a recorded rate (and at most of a mid rate)
BPS = 10_000


def _floor_significant(value: Fraction, digits: int = RATE_DIGITS) -> Decimal:
    """``value`` (> 0) rounded down to ``digits`` significant digits, as a Decimal (one correctly rounded division)."""
    with localcontext() as context:
        context.prec = digits
        context.rounding = ROUND_FLOOR
        return Decimal(value.numerator) / Decimal(value.denominator)


def rate_applied(*, mid: Decimal, spread_bps: int, inverse: bool) -> Decimal:
    """The rate a quote records: destination units per source unit, spread included, rounded down.

    ``mid`` is units of the pair's quote currency per unit of its base;
    ``inverse`` is True for the quote -> base direction.
    """
    exact = Fraction(mid)
    if inverse:
        exact = 1 / exact
    return _floor_significant(exact * Fraction(BPS - spread_bps, BPS))


def rate_mid(*, mid: Decimal, inverse: bool) -> Fraction:
    """The exact mid rate of one direction (no spread): what the spread is measured against."""
    return 1 / Fraction(mid) if inverse else Fraction(mid)


def _scale(source_exponent: int, destination_exponent: int) -> Fraction:
    return Fraction(10) ** (destination_exponent - source_exponent)


def destination_exact(*, source_amount: int, rate, source_exponent: int, destination_exponent: int) -> Fraction:
    """The destination minor units ``source_amount`` buys at ``rate`` (a Decimal or Fraction), unrounded."""
    return source_amount * Fraction(rate) * _scale(source_exponent, destination_exponent)


def destination_for(*, source_amount: int, rate: Decimal, source_exponent: int, destination_exponent: int) -> int:
    """What the customer receives for ``source_amount``: rounded down (house's favour)."""
    return math.floor(
        destination_exact(
            source_amount=source_amount, rate=rate, source_exponent=source_exponent, destination_exponent=destination_exponent
        )
    )


def source_for(*, destination_amount: int, rate: Decimal, source_exponent: int, destination_exponent: int) -> int:
    """What the customer pays to receive ``destination_amount``: rounded up (house's favour)."""
    return math.ceil(destination_amount / (Fraction(rate) * _scale(source_exponent, destination_exponent)))


def spread_earned(
    *, source_amount: int, destination_amount: int, mid: Fraction, source_exponent: int, destination_exponent: int
) -> int:
    """What the house keeps, in destination minor units: the exact value at mid minus what was paid out, rounded down."""
    at_mid = destination_exact(
        source_amount=source_amount, rate=mid, source_exponent=source_exponent, destination_exponent=destination_exponent
    )
    return math.floor(at_mid - destination_amount)


def rate_text(rate: Decimal) -> str:
    """A rate as the API shows it: a plain decimal string without exponent or trailing zeros."""
    text = format(rate.normalize(), "f")
    return text
