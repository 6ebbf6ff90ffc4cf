"""manage.py purge_idempotency: forget idempotency records older than the retention."""

from django.core.management.base import BaseCommand

from transactions.services.housekeeping import idempotency_purge


class Command(BaseCommand):
    help = "Delete idempotency records older than settings.IDEMPOTENCY_RETENTION (default 48 h)."

    def handle(self, *args, **options):
        count = idempotency_purge()
        self.stdout.write(f"purged {count} idempotency record(s)")
