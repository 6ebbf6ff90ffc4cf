"""Create (or bring up to date) the application's PostgreSQL role; see ``ledgerx.dbroles``.

Run as the tables' owner: with ``DATABASE_MIGRATE_URL`` set, ``manage.py``
connects with it for this command as for ``migrate``.
"""

import os

from django.core.management.base import BaseCommand, CommandError

from ledgerx.dbroles import APPEND_ONLY_TABLES, app_role_sync


class Command(BaseCommand):
    help = "Create/grant the application's database role: no ownership, INSERT/SELECT only on the append-only tables."

    def add_arguments(self, parser):
        parser.add_argument("role", help="the role DATABASE_URL connects as, e.g. ledgerx_app")
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            help="set the role's password from this environment variable (never on the command line)",
        )

    def handle(self, *args, role, password_env=None, **options):
        password = os.environ.get(password_env, "") if password_env else None
        if password_env and not password:
            raise CommandError(f"{password_env} is empty")
        try:
            app_role_sync(role=role, password=password)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"role {role}: granted; INSERT/SELECT only on {', '.join(APPEND_ONLY_TABLES)}")
