"""manage.py expire_holds: void every hold past its expiry (run it from cron)."""

from django.core.management.base import BaseCommand

from transactions.services import hold_expire


class Command(BaseCommand):
    help = "Void pending holds whose expiry (settings.HOLD_TTL after creation) has passed."

    def handle(self, *args, **options):
        count = hold_expire()
        self.stdout.write(f"expired {count} hold(s)")
