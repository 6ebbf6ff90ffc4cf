"""manage.py expire_holds: void every hold past its expiry (from cron, or ``--every`` as a scheduler)."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from transactions.services.holds import hold_expire


class Command(BaseCommand):
    help = "Void pending holds whose expiry (settings.HOLD_TTL after creation) has passed."

    def add_arguments(self, parser):
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="Keep running and sweep every SECONDS (a scheduler process, e.g. docker-compose's).",
        )

    def handle(self, *args, every=None, **options):
        if every is not None and every <= 0:
            raise CommandError("--every must be a positive number of seconds.")
        while True:
            count = hold_expire()
            stamp = timezone.now().isoformat(timespec="seconds")
            self.stdout.write(f"{stamp} expired {count} hold(s)")
            if every is None:
                return
            self.stdout.flush()
            time.sleep(every)
