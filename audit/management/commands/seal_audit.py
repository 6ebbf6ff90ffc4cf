"""Seal every committed, unsealed audit record (stragglers the on-commit hook left).

Then signs a checkpoint of the chain's head (``audit.checkpoints``) if it moved.
Safe to run at any time and from cron: it queues for the sealer's lock, so it
never forks the chain with a concurrent sealer.
"""

from django.core.management.base import BaseCommand

from audit.checkpoints import audit_checkpoint_create
from audit.services.sealing import audit_seal_pending


class Command(BaseCommand):
    help = "Extend the audit hash chain over every committed record not yet sealed."

    def handle(self, *args, **options):
        sealed = audit_seal_pending(wait=True)
        self.stdout.write(f"sealed {sealed} audit record(s)")
        # Cron runs this every minute: a checkpoint per run bounds the window
        # even when the background sealers are idle or dead.
        checkpoint = audit_checkpoint_create(force=True)
        if checkpoint is not None:
            self.stdout.write(f"signed checkpoint at seal #{checkpoint.seal_seq}")
