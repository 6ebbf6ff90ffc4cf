"""Client timestamps: ISO 8601 in, an aware UTC datetime (or None) out.

A timestamp is normalised to UTC before it can reach a query. Python accepts
UTC offsets up to ±23:59 while PostgreSQL's timestamptz refuses any beyond
±15:59 ("time zone displacement out of range", a 500 for ``as_of=...+16:00``),
and near the ends of the calendar the conversion to UTC itself overflows
(``0001-01-01T00:00:00+01:00``), which SQLite's adapter and DRF's output field
hit later as a 500 or a misplaced error. The contract's timestamps are UTC
anyway. A value without an offset is UTC.
"""

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime


def timestamp_parse(raw) -> datetime | None:
    """``raw`` as an aware UTC datetime, or None if it is not a representable ISO 8601 timestamp."""
    if not isinstance(raw, str):
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:  # well formed but impossible, e.g. 2026-02-30
        return None
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None
