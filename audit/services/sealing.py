"""Sealing: extending the hash chain over the committed records, out of band.

The writer of a record only queues it (``AuditPending``, in its own
transaction); the chain is extended after that transaction commits, by one
sealer at a time (a PostgreSQL advisory lock), so no money transaction waits
for the chain's head. See the design note in ``audit.models`` for the
unsealed window this leaves.
"""

import logging
import os
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from audit.models import AuditPending, AuditRecord, AuditSeal
from audit.services.chain import GENESIS_HASH, RECORD_COLUMNS, record_converter, record_hash

logger = logging.getLogger("ledgerx.audit")

# The sealer's PostgreSQL advisory lock key: "LXAUDIT" in ASCII.
SEAL_LOCK_KEY = 0x4C584155444954
SEAL_BATCH = 1000


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


def sealer_lock(*, wait: bool) -> bool:
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
    f'SELECT {RECORD_COLUMNS} FROM "{_PENDING}" p '
    f'JOIN "{_RECORD}" r ON r."id" = p."record_id" ORDER BY p."record_id" LIMIT %s'
)
_LAST_SEAL_SQL = f'SELECT "seq", "hash" FROM "{_SEAL}" ORDER BY "seq" DESC LIMIT 1'
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
            if not sealer_lock(wait=wait):
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
            convert = record_converter(connection)
            seals = []
            for row in pending:  # a row is the record's RECORD_COLUMNS, its id first
                seq += 1
                digest = record_hash(convert(row), prev_hash)
                seals.append((seq, row[0], prev_hash, digest))
                prev_hash = digest
            _seals_write(seals, timezone.now())
            sealed += len(seals)
        if len(pending) < batch:
            return sealed, True
    return sealed, True
