"""Writes to the audit trail: records, the seals of the hash chain, verification runs.

``audit_record`` is the one way to write an audit record; it joins the caller's
transaction. Sealing (``audit_seal_pending``) runs after that transaction
commits; see the design note in ``audit.models`` for why the chain is sealed
out of band and what the unsealed window is.
"""

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from audit.models import AuditAction, AuditPending, AuditRecord, AuditSeal, VerificationRun
from ledgerx.context import current_client_ip, current_request_id
from ledgerx.fastsql import insert_statement, rows_insert

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
    rows = audit_record_rows(actor=actor, action=action, target_type=target_type, target_id=target_id, data=data)
    # Record and sealing-queue row in one statement on PostgreSQL.
    rows_insert(*rows)
    return rows[0]


def audit_record_rows(
    *,
    actor,
    action: AuditAction,
    target_type: str,
    target_id: Any,
    data: dict | None = None,
) -> list:
    """``audit_record`` for a caller that writes the rows itself, in its own statement.

    Returns ``[record, queue row]``, unsaved, for ``ledgerx.fastsql.rows_insert``
    (the money services write them in the same statement as the transaction
    row: one round trip fewer per movement). The caller MUST insert them in the
    current transaction; the after-commit sealing is registered here.
    """
    record = audit_record_unsaved(actor=actor, action=action, target_type=target_type, target_id=target_id, data=data)
    audit_seal_after_commit()
    return [record, AuditPending(record=record)]


def audit_record_unsaved(
    *,
    actor,
    action: AuditAction,
    target_type: str,
    target_id: Any,
    data: dict | None = None,
) -> AuditRecord:
    """The audit record of an event, not saved and not queued (no hooks registered).

    For a writer that inserts the record and its sealing-queue row by other
    means (the PostgreSQL movement function, ``transactions.movements``); it
    must call ``audit_seal_after_commit`` once they are written.
    """
    ip = current_client_ip()
    return AuditRecord(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        ip=ip if ip not in (None, "unknown") else None,
        request_id=current_request_id() or "",
        data=data or {},
    )


def audit_seal_after_commit() -> None:
    """Have the records queued by the current transaction sealed once it commits (at once in autocommit)."""
    # robust: a sealing failure must never turn a committed change into an error
    # response; the record stays queued and the next sealer (or seal_audit) seals it.
    transaction.on_commit(_seal_after_commit, robust=True)


def _seal_after_commit() -> None:
    if getattr(settings, "AUDIT_SEAL_IN_BACKGROUND", not settings.TESTING):
        _background_sealer.request()
    else:
        audit_seal_pending(wait=False)


class _BackgroundSealer:
    """One daemon thread per process that seals what committed, in batches.

    Sealing inline after every commit costs each money movement a second
    database transaction (about 20% of a transfer's throughput, measured);
    coalescing the commits of the last few milliseconds into one sealing run
    amortises that to a fraction of a round trip per record, and the request
    never waits for it. The thread queues for the sealer's lock (it is off
    the request path), so a record whose commit raced another process's sealer
    is still sealed within one more cycle. If the process dies first, the next
    sealer anywhere (or ``seal_audit``) seals it.
    """

    COALESCE_SECONDS = 0.02
    IDLE_SECONDS = 1.0

    def __init__(self):
        self._wake = threading.Event()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self.idle = threading.Event()

    def request(self) -> None:
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            with self._guard:  # (re)start lazily: after a fork the parent's thread is gone
                if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                    self._wake = threading.Event()
                    self._pid = os.getpid()
                    self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            if not self._wake.wait(timeout=self.IDLE_SECONDS):
                # Idle: give the database connection back (this thread may sleep for hours).
                connection.close()
                self.idle.set()
                self._wake.wait()
            self.idle.clear()
            time.sleep(self.COALESCE_SECONDS)
            self._wake.clear()
            try:
                audit_seal_pending(wait=True)
            except Exception:  # noqa: BLE001 - the thread must survive a failed run; the records stay queued
                logger.exception("audit sealing failed; records stay queued for the next run")
                time.sleep(1)
            finally:
                close_old_connections()


_background_sealer = _BackgroundSealer()


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


_PENDING_SQL = (
    f'SELECT r.*, p."id" AS pending_id FROM "{AuditPending._meta.db_table}" p '
    f'JOIN "{AuditRecord._meta.db_table}" r ON r."id" = p."record_id" ORDER BY p."id" LIMIT %s'
)
_LAST_SEAL_SQL = f'SELECT "seq", "hash" FROM "{AuditSeal._meta.db_table}" ORDER BY "seq" DESC LIMIT 1'


def _seals_write(seals: list[AuditSeal], pending_ids: list[int]) -> None:
    """Insert the seals and dequeue their records: one statement on PostgreSQL."""
    insert_sql, params = insert_statement(*seals)
    pending_table = connection.ops.quote_name(AuditPending._meta.db_table)
    delete_sql = f"DELETE FROM {pending_table} WHERE id IN ({', '.join(['%s'] * len(pending_ids))})"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"WITH d AS ({delete_sql}) {insert_sql}", [*pending_ids, *params])
        else:
            cursor.execute(insert_sql, params)
            cursor.execute(delete_sql, pending_ids)


def audit_seal_pending(*, wait: bool = False, limit: int | None = None) -> int:
    """Extend the hash chain over every committed, unsealed record; returns how many.

    Exactly one sealer works at a time. With ``wait=False`` (the inline
    on-commit hook, used when ``AUDIT_SEAL_IN_BACKGROUND`` is off, as in tests)
    a busy sealer means someone else is sealing, and this call returns 0 at
    once; a record that sealer did not see is sealed by the next one.
    ``wait=True`` (the background sealer, ``seal_audit``, ``verify_audit``)
    queues for the lock.
    """
    sealed = 0
    while limit is None or sealed < limit:
        batch = SEAL_BATCH if limit is None else min(SEAL_BATCH, limit - sealed)
        with transaction.atomic():
            if not _sealer_lock(wait=wait):
                return sealed
            # Hand-written SQL: the background sealer runs many times a second
            # under load, and ORM query compilation was most of its CPU. The
            # records still load through the model (``raw`` applies the same
            # field converters as a queryset), so they hash exactly as
            # ``audit_chain_verify`` reads them.
            pending = list(AuditRecord.objects.raw(_PENDING_SQL, [batch]))
            if not pending:
                return sealed
            with connection.cursor() as cursor:
                cursor.execute(_LAST_SEAL_SQL)
                last = cursor.fetchone()
            seq, prev_hash = last if last else (0, GENESIS_HASH)
            seals = []
            now = timezone.now()
            for record in pending:
                seq += 1
                digest = record_hash(record, prev_hash)
                seals.append(AuditSeal(seq=seq, record_id=record.pk, prev_hash=prev_hash, hash=digest, sealed_at=now))
                prev_hash = digest
            _seals_write(seals, [record.pending_id for record in pending])
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
