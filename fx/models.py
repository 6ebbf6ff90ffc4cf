"""Currency conversion: the rates the house sets and the quotes it gives.

* ``FxRate`` is one row per currency pair, whichever way round: ``mid`` is
  units of ``quote`` per unit of ``base`` and ``spread_bps`` what the house
  keeps, both directions derived from this one row (``fx.rounding``). A
  database constraint keeps a pair to one row in either orientation. Edited
  only through ``fx.services.rate_set`` (API, back office, ``fx_rates_load``),
  which audits who changed what and when.
* ``FxQuote`` is a firm price given to one user: both amounts, the rate it
  applied, the mid and spread it came from, until ``expires_at``. A
  conversion (``transactions.batches``) locks the quote row, refuses it once
  ``used_at`` is set or it has expired, and sets ``used_at`` in the same
  transaction; ``Transaction.quote`` is unique, so the database also refuses
  a quote used twice.

Rates are ``DecimalField(40, 30)``: fifteen significant digits (``fx.rounding.RATE_DIGITS``)
from 10^-12 up to 10^10 fit exactly, on PostgreSQL and in SQLite's REAL alike.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from ledgerx.ids import uuid7

RATE_FIELD = {"max_digits": 40, "decimal_places": 30}


class FxRate(models.Model):
    id = models.BigAutoField(primary_key=True)
    base = models.CharField(max_length=3, editable=False)
    quote = models.CharField(max_length=3, editable=False)
    mid = models.DecimalField(**RATE_FIELD, editable=False, help_text="Units of quote per unit of base.")
    spread_bps = models.PositiveSmallIntegerField(editable=False, help_text="Basis points the house keeps, each way.")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["base", "quote"]
        verbose_name = "FX rate"
        constraints = [
            models.CheckConstraint(condition=~Q(base=F("quote")), name="fx_rate_two_currencies"),
            models.CheckConstraint(condition=Q(mid__gt=0), name="fx_rate_mid_positive"),
            models.CheckConstraint(condition=Q(spread_bps__lt=10000), name="fx_rate_spread_below_100pct"),
            # One row per pair, whichever way round it was entered.
            models.UniqueConstraint(Least("base", "quote"), Greatest("base", "quote"), name="fx_rate_pair_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.base}/{self.quote} {self.mid} ({self.spread_bps} bps)"


class FxQuote(models.Model):
    class Side(models.TextChoices):
        SOURCE = "source", "Source amount given"
        DESTINATION = "destination", "Destination amount given"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", editable=False)
    source_currency = models.CharField(max_length=3, editable=False)
    destination_currency = models.CharField(max_length=3, editable=False)
    source_amount = models.BigIntegerField(editable=False)
    destination_amount = models.BigIntegerField(editable=False)
    given = models.CharField(max_length=11, choices=Side.choices, editable=False)
    rate = models.DecimalField(**RATE_FIELD, editable=False, help_text="Destination units per source unit, spread included.")
    mid = models.DecimalField(**RATE_FIELD, editable=False, help_text="The pair's mid rate as stored when quoted.")
    spread_bps = models.PositiveSmallIntegerField(editable=False)
    spread_amount = models.BigIntegerField(
        editable=False, help_text="What the house keeps, in destination minor units (exact value at mid minus paid out)."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(editable=False)
    used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "FX quote"
        constraints = [
            models.CheckConstraint(
                condition=Q(source_amount__gt=0) & Q(destination_amount__gt=0), name="fx_quote_amounts_positive"
            ),
            models.CheckConstraint(condition=~Q(source_currency=F("destination_currency")), name="fx_quote_two_currencies"),
        ]
        # The back office lists quotes newest first.
        indexes = [models.Index(fields=["-created_at", "-id"], name="fx_quote_created_idx")]

    def __str__(self) -> str:
        return f"quote {self.pk}: {self.source_amount} {self.source_currency} -> {self.destination_amount} {self.destination_currency}"
