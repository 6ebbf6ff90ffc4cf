"""Money is an integer of minor units; this module is the only place that knows exponents.

Currencies are configuration (``settings.CURRENCIES``: ISO 4217 code -> minor-unit
exponent), so adding JPY (0) or KWD (3) is a settings change, not a migration.
"""

from django.conf import settings


def currency_exponent(currency: str) -> int:
    """The ISO minor-unit exponent. Raises KeyError for an unsupported currency."""
    return settings.CURRENCIES[currency]


def currency_supported(currency: str) -> bool:
    return isinstance(currency, str) and currency in settings.CURRENCIES


def amount_valid(amount) -> bool:
    """True for a strict int (never a bool) with 0 < amount <= MAX_AMOUNT."""
    return type(amount) is int and 0 < amount <= settings.MAX_AMOUNT


def money_format(amount: int, currency: str) -> str:
    """Format minor units exactly, without floats: (123456, "USD") -> "1234.56 USD"."""
    exponent = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent)
    text = f"{units:,}" if exponent == 0 else f"{units:,}.{minor:0{exponent}d}"
    return f"{sign}{text} {currency}"


def money_display(amount: int, currency: str) -> str:
    """``money_format`` for screens (admin lists, confirmation pages, ``__str__``).

    A currency since removed from settings still shows, as raw minor units,
    instead of failing the whole page.
    """
    try:
        return money_format(amount, currency)
    except KeyError:
        return f"{amount} {currency} (minor units)"


def money_split(amount: int, parts: int) -> list[int]:
    """Split ``amount`` into ``parts`` integers that sum to it exactly (remainder goes first)."""
    if parts <= 0:
        raise ValueError("parts must be positive")
    base, remainder = divmod(amount, parts)
    return [base + 1 if index < remainder else base for index in range(parts)]
