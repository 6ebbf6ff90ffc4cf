"""Money moved and transactions made per UTC day: a settled rollup carried forward, plus the live tail.

Design note
-----------
Counting a 90-day range from the transactions on every view reads every row
of the range (a million rows take a second). The figures of the past do not
change, except in one way, so the dashboard keeps them:

* The rollup (``backoffice.models.VolumeRollup``, one row in the same
  database, so it is restored, copied and dropped with the rows it counts)
  holds, per (currency, day), the total and count of the transactions created
  up to its *settled* moment that count as volume (deposits, withdrawals and
  transfers, committed or reversed since), and the ids of those that were
  still pending holds then.
* Rows are written with ``created_at`` already in the past (the service takes
  the booking time before its transaction, and the commit comes later), so
  only a moment older than every transaction still open can be settled:
  ``SETTLE_AFTER`` before the start of the oldest open transaction on the
  database (``pg_stat_activity``; on SQLite, before now).
* Past the settled moment a row changes the figures only by a pending hold
  becoming committed (a commit turns it into volume; a void or an expiry
  leaves it out, a reversal keeps a committed row in). The rollup keeps the
  pending ids and looks them up again (by primary key) on every view.

Each view then reads the rows created since the last settled moment (one
range of ``txn_created_idx``), moves the settled moment forward, re-reads the
pending ids, stores the rollup, and adds the tail (the rows after the new
settled moment, one more range) without storing it. The figure equals a count
of the rows themselves at that moment; with no rollup stored yet the first
view counts the whole range once. The view that finds the row locked by
another (``SKIP LOCKED``) carries the stored rollup forward without storing
it. Every read goes to the primary: a replica behind it would let a row slip
under the settled moment.
"""

from datetime import date, datetime, timedelta

from django.db import connections, router, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from backoffice.models import VolumeRollup
from transactions.models import Transaction

# How long before the oldest open transaction's start a row is taken as settled: covers the time a
# service spends between taking its booking moment and opening its database transaction, and clock skew.
SETTLE_AFTER = timedelta(minutes=1)
VOLUME_TYPES = (Transaction.Type.DEPOSIT, Transaction.Type.WITHDRAWAL, Transaction.Type.TRANSFER)
# Reversals are corrections, not volume; open and voided holds moved nothing.
COUNTED = Q(status=Transaction.Status.COMMITTED) | Q(status=Transaction.Status.REVERSED)


def _rows() -> QuerySet:
    alias = router.db_for_write(Transaction)  # the primary (see the design note)
    return Transaction.objects.using(alias).filter(type__in=VOLUME_TYPES)


def _add(days: dict, rows: QuerySet) -> None:
    for row in rows.filter(COUNTED).annotate(day=TruncDate("created_at")).values("currency", "day").annotate(
        total=Sum("amount"), count=Count("id")
    ).order_by():
        total, count = days.get((row["currency"], row["day"]), (0, 0))
        days[(row["currency"], row["day"])] = (total + row["total"], count + row["count"])


def _pending_ids(rows: QuerySet) -> set[str]:
    return {str(pk) for pk in rows.filter(status=Transaction.Status.PENDING).values_list("pk", flat=True)}


def settled_moment() -> datetime:
    """The latest moment at or before which no transaction can still be written (see the design note)."""
    now = timezone.now()
    connection = connections[router.db_for_write(Transaction)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT min(xact_start) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            )
            oldest = cursor.fetchone()[0]
        if oldest is not None:
            now = min(now, oldest)
    return now - SETTLE_AFTER


def _state_new(start: datetime, settled: datetime) -> dict:
    rows = _rows().filter(created_at__gte=start, created_at__lte=settled)
    days: dict = {}
    _add(days, rows)
    return {"start": start, "settled": settled, "days": days, "pending": _pending_ids(rows)}


def _state_advance(state: dict, settled: datetime) -> None:
    """Settle the rows created since the state's settled moment, and the pending holds decided since."""
    if settled > state["settled"]:
        rows = _rows().filter(created_at__gt=state["settled"], created_at__lte=settled)
        _add(state["days"], rows)
        state["pending"] |= _pending_ids(rows)
        state["settled"] = settled
    if state["pending"]:
        decided = _rows().filter(pk__in=state["pending"]).exclude(status=Transaction.Status.PENDING)
        state["pending"] -= {str(pk) for pk in decided.values_list("pk", flat=True)}
        _add(state["days"], decided)


def range_start(days: int) -> datetime:
    """UTC midnight opening a range of ``days`` days that ends today."""
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)


def _state_load(row: VolumeRollup) -> dict:
    return {
        "start": row.start, "settled": row.settled, "pending": set(row.pending),
        "days": {(currency, date.fromisoformat(day)): (total, count) for currency, day, total, count in row.days},
    }


def _state_store(alias: str, state: dict) -> None:
    days = [[currency, day.isoformat(), total, count] for (currency, day), (total, count) in sorted(state["days"].items())]
    VolumeRollup.objects.using(alias).update_or_create(
        pk=1, defaults={"start": state["start"], "settled": state["settled"], "days": days, "pending": sorted(state["pending"])}
    )


def daily_volume(days: int, *, kept_days: int) -> dict[tuple[str, date], tuple[int, int]]:
    """``{(currency, day): (total, count)}`` over the last ``days`` UTC days, as of now.

    The rollup covers the last ``kept_days`` (the longest range the dashboard
    offers), so every range is answered from the same one.
    """
    start, kept_from = range_start(days), range_start(kept_days)
    alias = router.db_for_write(VolumeRollup)
    with transaction.atomic(using=alias):
        settled = settled_moment()
        rollups = VolumeRollup.objects.using(alias)
        row = rollups.select_for_update(skip_locked=True).filter(pk=1).first()
        store = row is not None or not rollups.filter(pk=1).exists()  # else another view is storing it now
        row = row or rollups.filter(pk=1).first()
        if row is None or row.start > kept_from:
            state = _state_new(kept_from, settled)
        else:
            state = _state_load(row)
            _state_advance(state, settled)
            # Days before the longest range are not shown again: today only moves forward.
            state["days"] = {key: value for key, value in state["days"].items() if key[1] >= kept_from.date()}
        if store:
            _state_store(alias, state)
    figures = dict(state["days"])
    _add(figures, _rows().filter(created_at__gt=state["settled"]))  # the tail: not settled yet, not stored
    return {key: value for key, value in figures.items() if key[1] >= start.date()}
