"""manage.py fx_rates_load FILE.csv: set many pairs' rates at once, each through ``rate_set`` (audited).

The file has a header row ``base,quote,mid,spread_bps``. Every row is checked
first; one bad row loads nothing (exit 1, naming the row). Then all rows are
set in one transaction, audited as ``fx.rate_set`` with ``via: csv`` and the
admin named by ``--actor`` (an email), or no actor.
"""

import csv

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from fx.services import rate_input_validate, rate_set
from ledgerx.exceptions import LedgerXError

COLUMNS = ["base", "quote", "mid", "spread_bps"]


class Command(BaseCommand):
    help = "Load FX rates (base,quote,mid,spread_bps) from a CSV file; all rows or none."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV with the header base,quote,mid,spread_bps")
        parser.add_argument("--actor", help="Email of the admin the audit records name (default: none, the system).")

    def handle(self, *args, file: str, actor=None, **options):
        user = None
        if actor:
            user = User.objects.filter(email__iexact=actor, role=User.Role.ADMIN).first()
            if user is None:
                raise CommandError(f"No admin with the email {actor}.")
        rows = self._rows(file)
        with transaction.atomic():
            for row in rows:
                rate_set(actor=user, source="csv", **row)
        self.stdout.write(f"loaded {len(rows)} rate(s)")

    def _rows(self, file: str) -> list[dict]:
        try:
            with open(file, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if [name.strip() for name in reader.fieldnames or []] != COLUMNS:
                    raise CommandError(f"The header must be {','.join(COLUMNS)}.")
                raw = list(reader)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        rows = []
        for line, values in enumerate(raw, start=2):
            try:
                row = {
                    "base": values["base"].strip().upper(),
                    "quote": values["quote"].strip().upper(),
                    "mid": values["mid"].strip(),
                    "spread_bps": int(values["spread_bps"]),
                }
                rate_input_validate(**row)
            except (ValueError, TypeError, AttributeError):
                raise CommandError(f"Line {line}: spread_bps must be an integer.") from None
            except LedgerXError as exc:
                raise CommandError(f"Line {line}: {exc.fields or exc.message}") from None
            rows.append(row)
        return rows
