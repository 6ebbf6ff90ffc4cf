"""Recompute the audit hash chain and check its signed checkpoints; exit non-zero on any break.

Pending records are sealed first (see ``audit.models`` on the unsealed window),
then every seal is checked in order: contiguous ``seq``, ``prev_hash`` linking
to the previous seal, and the hash matching the record's current content. The
first broken record is named. Then the signed checkpoints (``audit.checkpoints``)
stored in the database, and with ``--checkpoints FILE`` those of the external
sink: each signature must verify and each signed head must still be the hash at
its seal number, which proves that no record up to the last checkpoint was
removed, changed or re-chained, even by the tables' owner. The outcome is
stored for the admin dashboard.
"""

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import checkpoints_from_database, checkpoints_from_file, checkpoints_verify
from audit.models import VerificationRun
from audit.services.verification import audit_chain_verify, verification_record


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain and signed checkpoints; exits 1 and names the first break."

    def add_arguments(self, parser):
        parser.add_argument("--no-seal", action="store_true", help="Do not seal pending records first.")
        parser.add_argument(
            "--checkpoints",
            metavar="FILE",
            help="Also check the signed checkpoints of this JSON-lines file (LEDGERX_AUDIT_CHECKPOINT_FILE's copy).",
        )

    def handle(self, *args, **options):
        report = audit_chain_verify(seal_first=not options["no_seal"])
        ok, summary = report.ok, report.summary
        if ok:
            stored = checkpoints_verify(checkpoints_from_database(), source="database checkpoint")
            ok, summary = stored.ok, summary + "; " + stored.summary_of("the database")
        if ok and options["checkpoints"]:
            try:
                shipped = checkpoints_verify(checkpoints_from_file(options["checkpoints"]), source=options["checkpoints"])
            except OSError as exc:
                raise CommandError(f"cannot read {options['checkpoints']}: {exc}") from exc
            ok, summary = shipped.ok, summary + "; " + shipped.summary_of(options["checkpoints"])
        verification_record(kind=VerificationRun.Kind.AUDIT, ok=ok, summary=summary)
        if not ok:
            raise CommandError(summary)
        self.stdout.write(summary)
