"""Every write of currency conversion's own rows: rates and quotes.

Conversions themselves are movements of the engine (``transactions.batches``:
one conversion item, or many in a batch); this module only prices them.
"""

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Context, Decimal, InvalidOperation

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.services import backoffice_actor_check
from audit.models import AuditAction
from audit.services import audit_record
from fx import rounding
from fx.models import FxQuote, FxRate
from fx.representations import rate_representation
from ledger.money import amount_valid, currency_exponent, currency_supported
from ledgerx.exceptions import InvalidState, ValidationFailed
from ledgerx.fastsql import prepared_cursor, row_insert
from ledgerx.ids import uuid7

MID_MIN = Decimal("1e-8")
MID_MAX = Decimal("1e8")
SPREAD_MAX_BPS = 5000


def _currency_errors(fields: dict, name: str, value) -> None:
    if not currency_supported(value):
        fields[name] = [f"Unsupported currency. Use one of: {', '.join(settings.CURRENCIES)}."]


def mid_parse(value) -> Decimal:
    """A mid rate from its decimal string. Raises ValidationFailed (the field ``mid``).

    A string (never a JSON number, which a client may have rounded through a
    float), positive, 10^-8 to 10^8, at most ``rounding.RATE_DIGITS``
    significant digits.
    """
    problem = None
    rate = None
    if not isinstance(value, str) or not value.strip():
        problem = "Must be a decimal string, e.g. \"1532.75\"."
    else:
        try:
            rate = Decimal(value.strip())
        except InvalidOperation:
            problem = "Must be a decimal string, e.g. \"1532.75\"."
    if problem is None and (not rate.is_finite() or not MID_MIN <= rate <= MID_MAX):
        problem = "Must be between 0.00000001 and 100000000."
    if problem is None and len(_significant_digits(rate)) > rounding.RATE_DIGITS:
        problem = f"At most {rounding.RATE_DIGITS} significant digits."
    if problem:
        raise ValidationFailed(fields={"mid": [problem]})
    return rate.normalize(Context(prec=rounding.RATE_DIGITS))  # exact: it has at most that many digits


def _significant_digits(value: Decimal) -> str:
    """The digits of ``value`` without leading or trailing zeros, counted without any context rounding."""
    return "".join(map(str, value.as_tuple().digits)).strip("0")


def rate_input_validate(*, base, quote, mid, spread_bps) -> Decimal:
    """The parsed mid of a valid rate; raises ValidationFailed naming every bad field (no query)."""
    fields: dict = {}
    _currency_errors(fields, "base", base)
    _currency_errors(fields, "quote", quote)
    if not fields and base == quote:
        fields["quote"] = ["Must differ from base."]
    if type(spread_bps) is not int or not 0 <= spread_bps <= SPREAD_MAX_BPS:
        fields["spread_bps"] = [f"Must be an integer from 0 to {SPREAD_MAX_BPS}."]
    try:
        parsed = mid_parse(mid)
    except ValidationFailed as exc:
        fields.update(exc.fields)
        parsed = None
    if fields:
        raise ValidationFailed(fields=fields)
    return parsed


def _pair(a: str, b: str) -> Q:
    return Q(base=a, quote=b) | Q(base=b, quote=a)


def rate_set(*, actor, base: str, quote: str, mid, spread_bps: int, source: str = "api") -> FxRate:
    """Set the pair's rate (one row per pair: entering NGN/USD replaces USD/NGN), audited with who and when.

    ``mid`` is a decimal string (units of ``quote`` per unit of ``base``);
    ``source`` says where the change came from (api, admin, csv) in the audit
    record. Raises ValidationFailed, UserSuspended (a suspended admin).
    """
    parsed = rate_input_validate(base=base, quote=quote, mid=mid, spread_bps=spread_bps)
    backoffice_actor_check(actor)
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _rate_write(actor=actor, base=base, quote=quote, mid=parsed, spread_bps=spread_bps, source=source)
        except IntegrityError:
            # A concurrent first setting of the same pair won: update its row instead.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _rate_write(*, actor, base, quote, mid, spread_bps, source) -> FxRate:
    now = timezone.now()
    row = FxRate.objects.select_for_update().filter(_pair(base, quote)).first()
    old = None
    if row is None:
        row = FxRate.objects.create(
            base=base, quote=quote, mid=mid, spread_bps=spread_bps, updated_by=actor, updated_at=now
        )
    else:
        old = {"base": row.base, "quote": row.quote, "mid": rounding.rate_text(row.mid), "spread_bps": row.spread_bps}
        row.base, row.quote, row.mid, row.spread_bps = base, quote, mid, spread_bps
        row.updated_by, row.updated_at = actor, now
        row.save()
    audit_record(
        actor=actor,
        action=AuditAction.FX_RATE_SET,
        target_type="fx_rate",
        target_id=f"{base}/{quote}",
        data={"old": old, "new": rate_representation(row), "via": source},
    )
    return row


@dataclass(frozen=True)
class _Rate:
    """What a quote takes from a pair's rate row, as last read."""

    id: int
    base: str
    quote: str
    mid: Decimal
    spread_bps: int
    updated_at: datetime


# The last rate row read per pair, in this process: only a guess, which the quote's INSERT checks against
# the row (``_quote_insert_if_rate_is``), so a rate changed elsewhere is never quoted from here.
_rates: dict[frozenset, _Rate] = {}


def _rate_read(source_currency: str, destination_currency: str) -> _Rate | None:
    row = (
        FxRate.objects.filter(_pair(source_currency, destination_currency))
        .values_list("id", "base", "quote", "mid", "spread_bps", "updated_at")
        .first()
    )
    key = frozenset((source_currency, destination_currency))
    if row is None:
        _rates.pop(key, None)
        return None
    _rates[key] = rate = _Rate(*row)
    return rate


def _stale(rate: _Rate, now) -> bool:
    return rate.updated_at < now - settings.FX_MAX_AGE


def _quote_priced(*, actor, rate: _Rate, now, source_currency, destination_currency, source_amount, destination_amount):
    """The unsaved quote at ``rate`` (the one rounding rule: ``fx.rounding``).

    Raises ValidationFailed when the computed side is outside 1 to MAX_AMOUNT.
    """
    inverse = rate.base != source_currency
    applied = rounding.rate_applied(mid=rate.mid, spread_bps=rate.spread_bps, inverse=inverse)
    exponents = {
        "source_exponent": currency_exponent(source_currency),
        "destination_exponent": currency_exponent(destination_currency),
    }
    if source_amount is not None:
        destination_amount = rounding.destination_for(source_amount=source_amount, rate=applied, **exponents)
        given, computed = FxQuote.Side.SOURCE, destination_amount
    else:
        source_amount = rounding.source_for(destination_amount=destination_amount, rate=applied, **exponents)
        given, computed = FxQuote.Side.DESTINATION, source_amount
    if not amount_valid(computed):
        name = "source_amount" if given == FxQuote.Side.SOURCE else "destination_amount"
        raise ValidationFailed(
            fields={name: [f"Converts to {computed} minor units of the other currency; it must be 1 to {settings.MAX_AMOUNT}."]}
        )
    spread = rounding.spread_earned(
        source_amount=source_amount,
        destination_amount=destination_amount,
        mid=rounding.rate_mid(mid=rate.mid, inverse=inverse),
        **exponents,
    )
    return FxQuote(
        id=uuid7(),
        user=actor,
        source_currency=source_currency,
        destination_currency=destination_currency,
        source_amount=source_amount,
        destination_amount=destination_amount,
        given=given,
        rate=applied,
        mid=rate.mid,
        spread_bps=rate.spread_bps,
        spread_amount=spread,
        created_at=now,
        expires_at=now + settings.FX_QUOTE_TTL,
        used_at=None,
    )


@functools.cache
def _conditional_insert_sql(vendor: str) -> str:
    """INSERT the quote only if the rate row is still the one it was priced at (PostgreSQL: typed for preparing)."""
    conn = connections[DEFAULT_DB_ALIAS]
    quote_name = conn.ops.quote_name

    def value(field) -> str:
        return f"%s::{field.db_type(conn)}" if vendor == "postgresql" else "%s"

    fields = FxQuote._meta.concrete_fields
    checked = [FxRate._meta.get_field(name) for name in _RATE_CHECKED]
    return (
        f"INSERT INTO {quote_name(FxQuote._meta.db_table)} ({', '.join(quote_name(f.column) for f in fields)}) "
        f"SELECT {', '.join(value(f) for f in fields)} FROM {quote_name(FxRate._meta.db_table)} "
        f"WHERE {' AND '.join(f'{quote_name(f.column)} = {value(f)}' for f in checked)}"
    )


_RATE_CHECKED = ("id", "updated_at", "mid", "spread_bps")


def _quote_insert_if_rate_is(quote: FxQuote, rate: _Rate) -> bool:
    """Write ``quote`` in ONE statement if ``rate`` is still the pair's row as it was read; False if not (nothing written).

    Every write of a rate (``rate_set``) sets its ``updated_at``, and the row
    is compared on its id, that time, mid and spread: a quote is never priced
    at a rate changed (or deleted) since it was read, and its staleness,
    judged on that ``updated_at``, is the row's own.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    params = [field.get_db_prep_save(getattr(quote, field.attname), conn) for field in FxQuote._meta.concrete_fields]
    params += [FxRate._meta.get_field(name).get_db_prep_value(getattr(rate, name), conn) for name in _RATE_CHECKED]
    sql = _conditional_insert_sql(conn.vendor)
    with prepared_cursor() if conn.vendor == "postgresql" else conn.cursor() as cursor:
        cursor.execute(sql, params)
        written = cursor.rowcount == 1
    if written:
        quote._state.adding, quote._state.db = False, conn.alias
    return written


def quote_create(
    *, actor, source_currency: str, destination_currency: str, source_amount=None, destination_amount=None
) -> FxQuote:
    """A firm price for ``actor`` for ``settings.FX_QUOTE_TTL`` (at least 30 s).

    Exactly one of the amounts is given; the other is computed at the pair's
    rate and rounded in the house's favour (``fx.rounding``). Raises
    ValidationFailed (currencies, amounts, an amount that converts to nothing
    or past the maximum), InvalidState (no rate for the pair, or a stale one).

    One statement when this process has read the pair's rate before: the
    quote is priced from that row and inserted only if the row is unchanged
    (``_quote_insert_if_rate_is``). Otherwise, or when the row changed, the
    rate is read and the quote inserted: two.
    """
    fields: dict = {}
    _currency_errors(fields, "source_currency", source_currency)
    _currency_errors(fields, "destination_currency", destination_currency)
    if not fields and source_currency == destination_currency:
        fields["destination_currency"] = ["Must differ from source_currency."]
    if (source_amount is None) == (destination_amount is None):
        fields["source_amount"] = ["Give exactly one of source_amount and destination_amount."]
    else:
        name, value = ("source_amount", source_amount) if source_amount is not None else ("destination_amount", destination_amount)
        if not amount_valid(value):
            fields[name] = [f"Must be an integer number of minor units, 1 to {settings.MAX_AMOUNT}."]
    if fields:
        raise ValidationFailed(fields=fields)

    now = timezone.now()
    sides = {
        "actor": actor, "now": now, "source_currency": source_currency, "destination_currency": destination_currency,
        "source_amount": source_amount, "destination_amount": destination_amount,
    }
    known = _rates.get(frozenset((source_currency, destination_currency)))
    if known is not None and not _stale(known, now):
        try:
            quote = _quote_priced(rate=known, **sides)
        except ValidationFailed:
            quote = None  # judged again on the row as it is now, below
        if quote is not None and _quote_insert_if_rate_is(quote, known):
            return quote

    rate = _rate_read(source_currency, destination_currency)
    if rate is None:
        raise InvalidState(f"There is no rate for {source_currency}/{destination_currency}.")
    if _stale(rate, now):
        raise InvalidState(f"The {rate.base}/{rate.quote} rate is stale (set {rate.updated_at:%Y-%m-%d %H:%M} UTC).")
    quote = _quote_priced(rate=rate, **sides)
    row_insert(quote)
    return quote


QUOTE_RETENTION = timedelta(days=1)


def quote_purge(*, now=None, batch: int = 5000) -> int:
    """Delete quotes never used and expired over ``QUOTE_RETENTION`` ago, in batches; returns how many.

    A used quote stays for good: its conversion names it (``Transaction.quote``).
    Run by the worker every hour.
    """
    cutoff = (now or timezone.now()) - QUOTE_RETENTION
    purged = 0
    while True:
        ids = list(FxQuote.objects.filter(used_at__isnull=True, expires_at__lt=cutoff).values_list("pk", flat=True)[:batch])
        if not ids:
            return purged
        purged += FxQuote.objects.filter(pk__in=ids, used_at__isnull=True).delete()[0]
