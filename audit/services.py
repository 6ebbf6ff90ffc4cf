"""Writes to the audit trail: records, the seals of the hash chain, verification runs.

``audit_record`` is the one way to write an audit record; it joins the caller's
transaction. Sealing (``audit_seal_pending``) runs after that transaction
commits; see the design note in ``audit.models`` for why the chain is sealed
out of band and what the unsealed window is.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from audit.models import AuditAction, AuditPending, AuditRecord, AuditSeal, VerificationRun
from ledgerx.context import current_client_ip, current_request_id

logger = logging.getLogger("ledgerx.audit")

GENESIS_HASH = "0" * 64
# The sealer's PostgreSQL advisory lock key: "LXAUDIT" in ASCII.
SEAL_LOCK_KEY = 0x4C584155444954
SEAL_BATCH = 1000


def audit_record(
    *,
    actor,
    action: AuditAction,
    target_type: str,
    target_id: Any,
    data: dict | None = None,
) -> AuditRecord:
    """Write one audit record in the caller's transaction.

    ``actor`` is a User or None for the system. The client IP and request id come
    from the request context (None outside a request). The record is queued for
    sealing, and the chain is extended once the caller's transaction commits.
    """
    ip = current_client_ip()
    record = AuditRecord.objects.create(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        ip=ip if ip not in (None, "unknown") else None,
        request_id=current_request_id() or "",
        data=data or {},
    )
    AuditPending.objects.create(record=record)
    # robust: a sealing failure must never turn a committed change into an error
    # response; the record stays queued and the next sealer (or seal_audit) seals it.
    transaction.on_commit(_seal_after_commit, robust=True)
    return record


def _seal_after_commit() -> None:
    audit_seal_pending(wait=False)


def record_canonical(record: AuditRecord) -> bytes:
    """The canonical serialization that is hashed: sorted-key JSON, UTC timestamps."""
    body = {
        "id": str(record.id),
        "at": record.at.isoformat(timespec="microseconds"),
        "actor": str(record.actor_id) if record.actor_id else None,
        "action": record.action,
        "target_type": record.target_type,
        "target_id": record.target_id,
        "ip": record.ip,
        "request_id": record.request_id,
        "data": record.data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: AuditRecord, prev_hash: str) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + record_canonical(record)).hexdigest()


def _sealer_lock(*, wait: bool) -> bool:
    """Take the sealer's lock for the current transaction; False when busy (and not waiting).

    On SQLite the surrounding transaction already holds the database's single
    write lock (BEGIN IMMEDIATE), so sealers are serialized there anyway.
    """
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def audit_seal_pending(*, wait: bool = False, limit: int | None = None) -> int:
    """Extend the hash chain over every committed, unsealed record; returns how many.

    Exactly one sealer works at a time. With ``wait=False`` (the on-commit hook)
    a busy sealer means someone else is sealing, and this call returns 0 at
    once; a record that sealer did not see is sealed by the next one.
    ``wait=True`` (``seal_audit``, ``verify_audit``) queues for the lock.
    """
    sealed = 0
    while limit is None or sealed < limit:
        batch = SEAL_BATCH if limit is None else min(SEAL_BATCH, limit - sealed)
        with transaction.atomic():
            if not _sealer_lock(wait=wait):
                return sealed
            pending = list(AuditPending.objects.select_related("record").order_by("id")[:batch])
            if not pending:
                return sealed
            last = AuditSeal.objects.order_by("-seq").only("seq", "hash").first()
            seq, prev_hash = (last.seq, last.hash) if last else (0, GENESIS_HASH)
            seals = []
            for item in pending:
                seq += 1
                digest = record_hash(item.record, prev_hash)
                seals.append(AuditSeal(seq=seq, record_id=item.record_id, prev_hash=prev_hash, hash=digest))
                prev_hash = digest
            AuditSeal.objects.bulk_create(seals)
            AuditPending.objects.filter(id__in=[item.id for item in pending]).delete()
            sealed += len(seals)
        if len(pending) < batch:
            return sealed
    return sealed


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
    """
    if seal_first:
        audit_seal_pending(wait=True)
    checked = 0
    prev_hash = GENESIS_HASH
    expected_seq = 1
    seals = AuditSeal.objects.select_related("record").order_by("seq").iterator(chunk_size=chunk_size)
    for seal in seals:
        if seal.seq != expected_seq:
            return ChainReport(False, checked, f"seq {expected_seq} is missing (next seal is #{seal.seq})", 0)
        if seal.prev_hash != prev_hash:
            return ChainReport(
                False, checked, f"record {seal.record_id} (seal #{seal.seq}): prev_hash does not link to #{seal.seq - 1}", 0
            )
        if record_hash(seal.record, prev_hash) != seal.hash:
            return ChainReport(
                False, checked, f"record {seal.record_id} (seal #{seal.seq}): content does not match its hash", 0
            )
        prev_hash = seal.hash
        expected_seq += 1
        checked += 1
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
