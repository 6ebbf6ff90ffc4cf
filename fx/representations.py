"""The public JSON shapes of rates and quotes, in plain Python (stored in audit data, rendered by the APIs)."""

from datetime import datetime

from fx.models import FxQuote, FxRate
from fx.rounding import rate_text


def _timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a trailing Z, as every LedgerX body shows times."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def rate_representation(rate: FxRate) -> dict:
    return {
        "base": rate.base,
        "quote": rate.quote,
        "mid": rate_text(rate.mid),
        "spread_bps": rate.spread_bps,
        "updated_at": _timestamp(rate.updated_at),
    }


def quote_representation(quote: FxQuote) -> dict:
    return {
        "id": str(quote.pk),
        "source_currency": quote.source_currency,
        "destination_currency": quote.destination_currency,
        "source_amount": quote.source_amount,
        "destination_amount": quote.destination_amount,
        "rate": rate_text(quote.rate),
        "expires_at": _timestamp(quote.expires_at),
    }
