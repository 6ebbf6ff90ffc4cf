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
from ledgerx.fastsql import rows_insert

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
    record = audit_record_unsaved(actor=actor, action=action, target_type=target_type, target_id=target_id, data=data)
    # Record and sealing-queue row in one statement on PostgreSQL. The atomic
    # block matters in autocommit (a failed login): the record and its queue row
    # commit together, and the sealing hook runs after that commit, not before it.
    with transaction.atomic(savepoint=False):
        rows_insert(*audit_rows_queued(record))
    return record


def audit_rows_queued(record: AuditRecord) -> list:
    """``[record, its sealing-queue row]``, unsaved, with the after-commit sealing registered.

    For a caller that inserts them itself in the current transaction, in its
    own statement (``ledgerx.fastsql.rows_insert``: the money services write
    them together with the transaction row, one round trip fewer).
    """
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
    if settings.AUDIT_SEAL_IN_BACKGROUND:
        _background_sealer.request()
    else:
        audit_seal_pending(wait=False)


def _seal_interval() -> float:
    return settings.AUDIT_SEAL_INTERVAL


def _until_tick(interval: float) -> float:
    """Seconds to the next multiple of ``interval`` on the wall clock (the same instant in every process)."""
    return interval - time.time() % interval if interval > 0 else 0.0


class _BackgroundSealer:
    """One daemon thread per process that seals what committed, on a cadence.

    A commit only wakes the thread; the thread sleeps until the next tick of the
    wall clock (a multiple of ``AUDIT_SEAL_INTERVAL``, 0.25 s by default) and
    then seals everything queued -- by every process -- in one transaction.
    Sealing costs a transaction per run plus a little per record, so the longer
    the interval, the more records share a run and the less each record costs.

    The ticks are the same in every process, so the sealers of C worker
    processes all run at once: one takes the sealer's lock and seals what all
    of them committed, and the others find the lock busy, which costs them a
    one-statement transaction instead of a sealing transaction each for a few
    records. A sealer never queues for the lock: a
    busy lock means another process is sealing, and this thread tries again at
    the next tick whether or not anything else commits (a record that
    committed after the other sealer read the queue is sealed by that retry),
    until a run succeeds. A failed run is retried the same way. If the process
    dies first, the next sealer anywhere (or ``seal_audit``) seals its records.
    """

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
        retry = False
        while True:
            interval = _seal_interval()
            if not retry and not self._wake.wait(timeout=max(self.IDLE_SECONDS, 2 * interval)):
                # Idle: give the database connection back (this thread may sleep for hours).
                connection.close()
                self.idle.set()
                self._wake.wait()
            self.idle.clear()
            time.sleep(_until_tick(interval))
            self._wake.clear()
            try:
                _, done = _seal_pending(wait=False)
                retry = not done
            except Exception:  # noqa: BLE001 - the thread must survive a failed run; the records stay queued
                logger.exception("audit sealing failed; records stay queued for the next run")
                retry = True
                time.sleep(1)
            finally:
                close_old_connections()


_background_sealer = _BackgroundSealer()


# The record's fields that are hashed, in the order ``record_canonical`` takes their values.
CANONICAL_FIELDS = ("id", "at", "actor", "action", "target_type", "target_id", "ip", "request_id", "data")
_RECORD_FIELDS = tuple(AuditRecord._meta.get_field(name) for name in CANONICAL_FIELDS)
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_canonical(id, at, actor_id, action, target_type, target_id, ip, request_id, data) -> bytes:
    """THE canonical serialization that is hashed: sorted-key JSON, UTC timestamps.

    Takes the record's values (``CANONICAL_FIELDS``, in that order) exactly as
    the ORM loads them: ``id`` a UUID, ``at`` an aware UTC datetime, ``ip`` text
    or None, ``data`` the stored JSON decoded. Sealing and ``audit_chain_verify``
    both read them with ``_record_converter`` (the ORM's own converters, no
    model instances), so a record hashes the same whoever reads it;
    ``record_values`` gives the same values from a loaded ``AuditRecord``.
    """
    body = {
        "id": str(id),
        "at": at.isoformat(timespec="microseconds"),
        "actor": str(actor_id) if actor_id else None,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "ip": ip,
        "request_id": request_id,
        "data": data,
    }
    return _CANONICAL_JSON.encode(body).encode()


def record_values(record: AuditRecord) -> tuple:
    """The values ``record_canonical`` takes, from a loaded record."""
    return tuple(getattr(record, field.attname) for field in _RECORD_FIELDS)


def record_hash(values, prev_hash: str) -> str:
    """The link's hash: SHA-256 of the previous hash, a newline and the record's canonical form."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + record_canonical(*values)).hexdigest()


# The record's columns as both sealing and verification select them ("r" is the
# record table's alias; PostgreSQL and SQLite quote names alike).
_RECORD_COLUMNS = ", ".join(f'r."{field.column}"' for field in _RECORD_FIELDS)


def _record_converter(conn):
    """Turns the ``_RECORD_COLUMNS`` of a row into the values ``record_canonical`` takes.

    Sealing and verification read records with a plain cursor: building an
    ``AuditRecord`` per row was most of the sealer's CPU. The values go through
    the converters the ORM itself applies to these columns (on PostgreSQL only
    the JSON decode; on SQLite also UUIDs and datetimes), so they are exactly
    what a queryset loads. Made per run: converters belong to the calling
    thread's connection.
    """
    converters = []
    for position, field in enumerate(_RECORD_FIELDS):
        col = field.get_col("r")
        chain = conn.ops.get_db_converters(col) + col.get_db_converters(conn)
        if chain:
            converters.append((position, chain, col))

    def convert(columns) -> list:
        values = list(columns)
        for position, chain, col in converters:
            value = values[position]
            for converter in chain:
                value = converter(value, col, conn)
            values[position] = value
        return values

    return convert


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


_RECORD = AuditRecord._meta.db_table
_PENDING = AuditPending._meta.db_table
_SEAL = AuditSeal._meta.db_table
_PENDING_SQL = (
    f'SELECT {_RECORD_COLUMNS} FROM "{_PENDING}" p '
    f'JOIN "{_RECORD}" r ON r."id" = p."record_id" ORDER BY p."record_id" LIMIT %s'
)
_LAST_SEAL_SQL = f'SELECT "seq", "hash" FROM "{_SEAL}" ORDER BY "seq" DESC LIMIT 1'
_CHAIN_PAGE_SQL = (
    f'SELECT s."seq", s."prev_hash", s."hash", {_RECORD_COLUMNS} FROM "{_SEAL}" s '
    f'JOIN "{_RECORD}" r ON r."id" = s."record_id" WHERE s."seq" > %s ORDER BY s."seq" LIMIT %s'
)
_SEAL_COLUMNS = '"seq", "record_id", "prev_hash", "hash", "sealed_at"'
# Arrays, not one placeholder per value: the statement stays the same size
# whatever the batch. They are sent as array literals built here (every element
# is digits, hex or a UUID: nothing to quote), which costs a fraction of
# adapting each element.
_SEALS_WRITE_PG = (
    f"WITH s AS (SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::varchar[], %s::varchar[]) "
    f"AS s(seq, record_id, prev_hash, hash)), "
    f'd AS (DELETE FROM "{_PENDING}" p USING s WHERE p."record_id" = s.record_id) '
    f'INSERT INTO "{_SEAL}" ({_SEAL_COLUMNS}) SELECT s.seq, s.record_id, s.prev_hash, s.hash, %s FROM s'
)


def _array(values) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _seals_write(seals: list[tuple], sealed_at) -> None:
    """Insert the seals ``(seq, record_id, prev_hash, hash)`` and dequeue their records.

    One statement on PostgreSQL. ``record_id`` is the value as read from the
    database, so it goes back unconverted.
    """
    sealed_at = AuditSeal._meta.get_field("sealed_at").get_db_prep_save(sealed_at, connection)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_SEALS_WRITE_PG, [*(_array(column) for column in zip(*seals)), sealed_at])
        else:
            cursor.executemany(
                f'INSERT INTO "{_SEAL}" ({_SEAL_COLUMNS}) VALUES (%s, %s, %s, %s, %s)',
                [(*seal, sealed_at) for seal in seals],
            )
            record_ids = [seal[1] for seal in seals]
            cursor.execute(
                f'DELETE FROM "{_PENDING}" WHERE "record_id" IN ({", ".join(["%s"] * len(record_ids))})', record_ids
            )


def audit_seal_pending(*, wait: bool = False, limit: int | None = None) -> int:
    """Extend the hash chain over every committed, unsealed record; returns how many.

    Exactly one sealer works at a time. With ``wait=False`` (the background
    sealer, and the inline on-commit hook used when ``AUDIT_SEAL_IN_BACKGROUND``
    is off, as in tests) a busy sealer means someone else is sealing, and this
    call returns at once; a record that sealer did not see is sealed by the
    next run (the background sealer retries at its next tick).
    ``wait=True`` (``seal_audit``, ``verify_audit``) queues for the lock.
    """
    return _seal_pending(wait=wait, limit=limit)[0]


def _seal_pending(*, wait: bool, limit: int | None = None) -> tuple[int, bool]:
    """``audit_seal_pending``, also saying whether it ran to the end: False when the lock was busy.

    A run that sealed something also signs a checkpoint of the new head when one
    is due (``audit.checkpoints``).
    """
    sealed, done = _seal_batches(wait=wait, limit=limit)
    if sealed:
        from audit.checkpoints import audit_checkpoint_create

        audit_checkpoint_create()
    return sealed, done


def _seal_batches(*, wait: bool, limit: int | None) -> tuple[int, bool]:
    sealed = 0
    while limit is None or sealed < limit:
        batch = SEAL_BATCH if limit is None else min(SEAL_BATCH, limit - sealed)
        with transaction.atomic():
            if not _sealer_lock(wait=wait):
                return sealed, False
            # Read after the lock: the previous holder's seals and dequeues are
            # committed and visible to this statement.
            with connection.cursor() as cursor:
                cursor.execute(_PENDING_SQL, [batch])
                pending = cursor.fetchall()
                if not pending:
                    return sealed, True
                cursor.execute(_LAST_SEAL_SQL)
                last = cursor.fetchone()
            seq, prev_hash = last if last else (0, GENESIS_HASH)
            convert = _record_converter(connection)
            seals = []
            for row in pending:  # a row is the record's _RECORD_COLUMNS, its id first
                seq += 1
                digest = record_hash(convert(row), prev_hash)
                seals.append((seq, row[0], prev_hash, digest))
                prev_hash = digest
            _seals_write(seals, timezone.now())
            sealed += len(seals)
        if len(pending) < batch:
            return sealed, True
    return sealed, True


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
    Records are read as the sealer reads them (``_record_converter``), in pages of
    ``chunk_size`` seals by ``seq``.
    """
    if seal_first:
        audit_seal_pending(wait=True)
    checked = 0
    prev_hash = GENESIS_HASH
    expected_seq = 1
    convert = _record_converter(connection)
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
