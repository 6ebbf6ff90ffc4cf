"""Recompute the audit hash chain; exit non-zero on any break.

Pending records are sealed first (see ``audit.models`` on the unsealed window),
then every seal is checked in order: contiguous ``seq``, ``prev_hash`` linking
to the previous seal, and the hash matching the record's current content. The
first broken record is named. The outcome is stored for the admin dashboard.
"""

from django.core.management.base import BaseCommand, CommandError

from audit.models import VerificationRun
from audit.services import audit_chain_verify, verification_record


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exits 1 and names the first broken record on any break."

    def add_arguments(self, parser):
        parser.add_argument("--no-seal", action="store_true", help="Do not seal pending records first.")

    def handle(self, *args, **options):
        report = audit_chain_verify(seal_first=not options["no_seal"])
        verification_record(kind=VerificationRun.Kind.AUDIT, ok=report.ok, summary=report.summary)
        if not report.ok:
            raise CommandError(report.summary)
        self.stdout.write(report.summary)
