"""Create (or reset) the demo credentials and print them: a customer and an admin."""

from django.core.management.base import BaseCommand

from accounts.models import User

DEMO_USERS = [
    {"email": "demo@ledgerx.local", "password": "demo-password-2026", "full_name": "Demo Customer", "admin": False},
    {"email": "admin@ledgerx.local", "password": "admin-password-2026", "full_name": "Demo Admin", "admin": True},
]


class Command(BaseCommand):
    help = "Create the demo customer and admin (idempotent) and print their credentials."

    def handle(self, *args, **options):
        for spec in DEMO_USERS:
            user = User.objects.filter(email__iexact=spec["email"]).first()
            if user is None:
                factory = User.objects.create_superuser if spec["admin"] else User.objects.create_user
                factory(email=spec["email"], password=spec["password"], full_name=spec["full_name"])
            self.stdout.write(
                f"demo {'admin' if spec['admin'] else 'user '}: {spec['email']} / {spec['password']}"
            )
