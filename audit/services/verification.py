"""Verification runs: recomputing the whole chain, and the stored outcome of every run."""

from dataclasses import dataclass

from django.db import connection

from audit.models import AuditPending, AuditRecord, AuditSeal, VerificationRun
from audit.services.chain import GENESIS_HASH, RECORD_COLUMNS, record_converter, record_hash
from audit.services.sealing import audit_seal_pending

_RECORD = AuditRecord._meta.db_table
_SEAL = AuditSeal._meta.db_table
_CHAIN_PAGE_SQL = (
    f'SELECT s."seq", s."prev_hash", s."hash", {RECORD_COLUMNS} FROM "{_SEAL}" s '
    f'JOIN "{_RECORD}" r ON r."id" = s."record_id" WHERE s."seq" > %s ORDER BY s."seq" LIMIT %s'
)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_break: str | None
    unsealed: int

    @property
    def summary(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} sealed records checked, {self.unsealed} awaiting a seal"
        return f"audit chain BROKEN: {self.first_break} ({self.checked} records checked before it)"


def audit_chain_verify(*, seal_first: bool = True, chunk_size: int = 2000) -> ChainReport:
    """Recompute the whole chain (constant memory); name the first broken link.

    Seals the pending queue first, so the only records legitimately left
    unsealed are those committed during the run. A record that is neither
    sealed nor queued, a gap in ``seq``, a ``prev_hash`` that is not the
    previous hash, or a hash that does not match the record's content is a break.
    Records are read as the sealer reads them (``record_converter``), in pages of
    ``chunk_size`` seals by ``seq``.
    """
    if seal_first:
        audit_seal_pending(wait=True)
    checked = 0
    prev_hash = GENESIS_HASH
    expected_seq = 1
    convert = record_converter(connection)
    last_seq = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_CHAIN_PAGE_SQL, [last_seq, chunk_size])
            page = cursor.fetchall()
        for row in page:
            seq, seal_prev_hash, seal_hash = row[0], row[1], row[2]
            values = convert(row[3:])
            if seq != expected_seq:
                return ChainReport(False, checked, f"seq {expected_seq} is missing (next seal is #{seq})", 0)
            if seal_prev_hash != prev_hash:
                return ChainReport(
                    False, checked, f"record {values[0]} (seal #{seq}): prev_hash does not link to #{seq - 1}", 0
                )
            if record_hash(values, prev_hash) != seal_hash:
                return ChainReport(False, checked, f"record {values[0]} (seal #{seq}): content does not match its hash", 0)
            prev_hash = seal_hash
            expected_seq += 1
            checked += 1
        if len(page) < chunk_size:
            break
        last_seq = page[-1][0]
    queued = AuditPending.objects.count()
    orphan = (
        AuditRecord.objects.filter(seal__isnull=True)
        .exclude(id__in=AuditPending.objects.values("record_id"))
        .order_by("at", "id")
        .values_list("id", flat=True)
        .first()
    )
    if orphan is not None:
        return ChainReport(False, checked, f"record {orphan} is neither sealed nor queued for sealing", queued)
    return ChainReport(True, checked, None, queued)


def verification_record(*, kind: str, ok: bool, summary: str) -> VerificationRun:
    """Store the outcome of a verification run (``verify_audit``, ``verify_ledger``) for the dashboard."""
    if kind not in VerificationRun.Kind.values:
        raise ValueError(f"unknown verification kind {kind!r}")
    return VerificationRun.objects.create(kind=kind, ok=bool(ok), summary=str(summary)[:10000])
