"""createsuperuser that makes a role-admin user and works with --noinput alone.

Django's command insists on every REQUIRED_FIELDS value with --noinput; the full
name is cosmetic for an operator account, so it falls back to
DJANGO_SUPERUSER_FULL_NAME and then to "Administrator". The role comes from
UserManager.create_superuser (role admin, is_staff, is_superuser).
"""

import os

from django.contrib.auth.management.commands.createsuperuser import Command as DjangoCreateSuperuser


class Command(DjangoCreateSuperuser):
    DEFAULT_FULL_NAME = "Administrator"

    def handle(self, *args, **options):
        if not options.get("interactive") and not options.get("full_name"):
            options["full_name"] = os.environ.get("DJANGO_SUPERUSER_FULL_NAME") or self.DEFAULT_FULL_NAME
        return super().handle(*args, **options)
