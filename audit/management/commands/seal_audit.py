"""Seal every committed, unsealed audit record (stragglers the on-commit hook left).

Safe to run at any time and from cron: it queues for the sealer's lock, so it
never forks the chain with a concurrent sealer.
"""

from django.core.management.base import BaseCommand

from audit.services import audit_seal_pending


class Command(BaseCommand):
    help = "Extend the audit hash chain over every committed record not yet sealed."

    def handle(self, *args, **options):
        sealed = audit_seal_pending(wait=True)
        self.stdout.write(f"sealed {sealed} audit record(s)")
