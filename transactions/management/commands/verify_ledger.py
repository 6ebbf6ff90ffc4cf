"""manage.py verify_ledger: audit the books; exit 1 on any breach."""

import sys

from django.core.management.base import BaseCommand, CommandError

from audit.services import verification_record
from transactions.verification import books_verify


class Command(BaseCommand):
    help = "Check every ledger invariant in SQL aggregates; exits non-zero on any breach."

    def handle(self, *args, **options):
        interactive = sys.stdout.isatty()

        def progress(name: str) -> None:
            if interactive:
                self.stdout.write(f"checking: {name} ...")

        results = books_verify(progress)
        failed = 0
        for result in results:
            if result.ok:
                self.stdout.write(f"ok      {result.name}")
            else:
                failed += 1
                self.stdout.write(self.style.ERROR(f"BREACH  {result.name}: {result.breaches}"))
                for example in result.examples:
                    self.stdout.write(f"          e.g. {example}")
        summary = f"{len(results)} checks, {len(results) - failed} ok, {failed} breached"
        self.stdout.write(summary)
        # The admin dashboard shows the last run.
        verification_record(kind="ledger", ok=not failed, summary=summary)
        if failed:
            raise CommandError(f"{failed} ledger invariant(s) breached", returncode=1)
