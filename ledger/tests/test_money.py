import pytest
from django.test import override_settings

from ledger.money import amount_valid, currency_supported, money_display, money_format, money_split


@pytest.mark.parametrize(
    "amount, currency, text",
    [(123456, "USD", "1,234.56 USD"), (5, "NGN", "0.05 NGN"), (-1050, "EUR", "-10.50 EUR"), (0, "GBP", "0.00 GBP")],
)
def test_money_format(amount, currency, text):
    assert money_format(amount, currency) == text


@override_settings(CURRENCIES={"JPY": 0, "KWD": 3})
def test_money_format_other_exponents():
    assert money_format(1500, "JPY") == "1,500 JPY"
    assert money_format(1500, "KWD") == "1.500 KWD"


@pytest.mark.parametrize("value, ok", [(1, True), (10**15, True), (0, False), (-1, False), (10**15 + 1, False), (True, False), (1.0, False), ("1", False), (None, False)])
def test_amount_valid(value, ok):
    assert amount_valid(value) is ok


def test_currency_supported():
    assert currency_supported("USD") and currency_supported("NGN")
    assert not currency_supported("usd") and not currency_supported("XXX") and not currency_supported(None)


def test_money_split_keeps_remainder():
    assert money_split(100, 3) == [34, 33, 33]
    assert sum(money_split(10**15, 7)) == 10**15
    with pytest.raises(ValueError):
        money_split(1, 0)


def test_money_display_shows_a_removed_currency_as_minor_units():
    assert money_display(-123456, "USD") == "-1,234.56 USD"
    assert money_display(1250, "XXX") == "1250 XXX (minor units)"
