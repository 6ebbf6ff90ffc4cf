"""Break glass: reinstate a suspended user (an admin locked out with nobody left to reinstate them).

Runs ``user_reinstate`` with no actor (the system), so it bypasses four-eyes on
purpose: it is for the operator with shell access when the back office itself
cannot act. The reason is required and the reinstatement is audited like any
other (``user.reinstated``, actor null, ``data.via = "reinstate_user"``).
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import user_reinstate
from ledgerx.exceptions import LedgerXError


class Command(BaseCommand):
    help = "Reinstate a suspended user by email, with a reason (audited)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--reason", required=True, help="Why; recorded in the audit trail.")

    def handle(self, *args, email, reason, **options):
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user with the email {email}.")
        try:
            user_reinstate(actor=None, user=user, reason=f"{reason.strip()} (via reinstate_user)" if reason.strip() else "")
        except LedgerXError as exc:
            raise CommandError(f"Reinstate refused for {user.email}: {exc.message}") from None
        self.stdout.write(f"Reinstated {user.email}.")
