"""manage.py verify_ledger: audit the books; exit 1 on any breach."""

import sys

from django.core.management.base import BaseCommand, CommandError

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
                self.stdout.write(self.style.ERROR(f"BREACH  {result.name}: {result.breaches} (e.g. {result.examples})"))
        self.stdout.write(f"{len(results)} checks, {len(results) - failed} ok, {failed} breached")
        if failed:
            raise CommandError(f"{failed} ledger invariant(s) breached", returncode=1)
