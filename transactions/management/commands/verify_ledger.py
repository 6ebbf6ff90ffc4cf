"""manage.py verify_ledger: audit the books; exit 1 on any breach."""

import sys

from contextlib import nullcontext

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.services.verification import verification_record
from ledgerx.db.replicas import reading_from, replica_state
from transactions.verification import books_verify


class Command(BaseCommand):
    help = "Check every ledger invariant in SQL aggregates; exits non-zero on any breach."

    def add_arguments(self, parser):
        parser.add_argument(
            "--replica",
            action="store_true",
            help="Read the books from a streaming replica (DATABASE_REPLICA_URLS), sparing the primary; "
            "the result holds for the books as of the replica's replay position.",
        )

    def _replica(self) -> str:
        """A replica that is up, however far behind: the checks cover the books it has replayed."""
        if not settings.REPLICA_ALIASES:
            raise CommandError("--replica needs DATABASE_REPLICA_URLS")
        for alias in settings.REPLICA_ALIASES:
            state = replica_state(alias, fresh=True)
            if state.up:
                self.stdout.write(f"reading from {alias} (replayed to {state.replay_lsn}, lag {state.lag}s)")
                return alias
        raise CommandError("no replica is up")

    def handle(self, *args, **options):
        interactive = sys.stdout.isatty()

        def progress(name: str) -> None:
            if interactive:
                self.stdout.write(f"checking: {name} ...")

        with reading_from(self._replica()) if options["replica"] else nullcontext():
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
