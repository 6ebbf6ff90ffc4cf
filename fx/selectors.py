"""Reads of currency conversion: the rates, and the house's FX position for the dashboard."""

from django.conf import settings
from django.db.models import Sum

from fx.models import FxQuote, FxRate
from ledger.models import LedgerAccount
from ledger.money import money_display


def rates_all() -> list[FxRate]:
    return list(FxRate.objects.order_by("base", "quote"))


def pool_positions() -> list[dict]:
    """Per currency converted: the FX pools' position (sum over shards) and the spread earned on committed conversions.

    Two aggregate queries. A pool takes what customers pay in its currency and
    pays what they receive in it, so its position is positive when more was
    converted out of the currency than into it (the house holds it) and
    negative otherwise. The spread is what the quotes kept against the mid
    rate, in the destination currency (conversions since reversed left out).
    """
    positions = dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM, system_role=LedgerAccount.SystemRole.FX_POOL)
        .values("currency")
        .annotate(total=Sum("posted"))
        .values_list("currency", "total")
    )
    spread = dict(
        FxQuote.objects.filter(transaction__status="committed")
        .values("destination_currency")
        .annotate(total=Sum("spread_amount"))
        .values_list("destination_currency", "total")
    )
    return [
        {
            "currency": code,
            "position": money_display(positions.get(code) or 0, code),
            "spread": money_display(spread.get(code) or 0, code),
        }
        for code in sorted(set(positions) | set(spread))
        if code in settings.CURRENCIES and (positions.get(code) or spread.get(code))
    ]
