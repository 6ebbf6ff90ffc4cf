"""Every write of currency conversion's own rows: rates and quotes.

Conversions themselves are movements of the engine (``transactions.batches``:
one conversion item, or many in a batch); this module only prices them.
"""

from datetime import timedelta
from decimal import Context, Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
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


def quote_create(
    *, actor, source_currency: str, destination_currency: str, source_amount=None, destination_amount=None
) -> FxQuote:
    """A firm price for ``actor`` for ``settings.FX_QUOTE_TTL`` (at least 30 s).

    Exactly one of the amounts is given; the other is computed at the pair's
    rate and rounded in the house's favour (``fx.rounding``). Raises
    ValidationFailed (currencies, amounts, an amount that converts to nothing
    or past the maximum), InvalidState (no rate for the pair, or a stale one).
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

    row = FxRate.objects.filter(_pair(source_currency, destination_currency)).first()
    if row is None:
        raise InvalidState(f"There is no rate for {source_currency}/{destination_currency}.")
    now = timezone.now()
    if row.updated_at < now - settings.FX_MAX_AGE:
        raise InvalidState(f"The {row.base}/{row.quote} rate is stale (set {row.updated_at:%Y-%m-%d %H:%M} UTC).")
    inverse = row.base != source_currency
    rate = rounding.rate_applied(mid=row.mid, spread_bps=row.spread_bps, inverse=inverse)
    exponents = {
        "source_exponent": currency_exponent(source_currency),
        "destination_exponent": currency_exponent(destination_currency),
    }
    if source_amount is not None:
        destination_amount = rounding.destination_for(source_amount=source_amount, rate=rate, **exponents)
        given, other = FxQuote.Side.SOURCE, ("destination_amount", destination_amount)
    else:
        source_amount = rounding.source_for(destination_amount=destination_amount, rate=rate, **exponents)
        given, other = FxQuote.Side.DESTINATION, ("source_amount", source_amount)
    if not amount_valid(other[1]):
        name = "source_amount" if given == FxQuote.Side.SOURCE else "destination_amount"
        raise ValidationFailed(
            fields={name: [f"Converts to {other[1]} minor units of the other currency; it must be 1 to {settings.MAX_AMOUNT}."]}
        )
    spread = rounding.spread_earned(
        source_amount=source_amount,
        destination_amount=destination_amount,
        mid=rounding.rate_mid(mid=row.mid, inverse=inverse),
        **exponents,
    )
    return FxQuote.objects.create(
        user=actor,
        source_currency=source_currency,
        destination_currency=destination_currency,
        source_amount=source_amount,
        destination_amount=destination_amount,
        given=given,
        rate=rate,
        mid=row.mid,
        spread_bps=row.spread_bps,
        spread_amount=spread,
        created_at=now,
        expires_at=now + settings.FX_QUOTE_TTL,
    )


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
