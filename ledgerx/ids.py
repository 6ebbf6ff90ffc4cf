"""Identifiers of the rows that grow without bound: time-ordered UUIDs (version 7, RFC 9562).

A transaction and an audit record each put their id into several B-tree
indexes (primary keys, the journal entry's ``ref_id``, the audit record's
``target_id``, the seal's ``record_id``). With random (version 4) ids every
insert lands on a random leaf page of each: once those indexes outgrow the
buffer cache, inserts read pages back, and after every checkpoint nearly each
insert writes a full-page image to the WAL. A version 7 id starts with the
Unix time in milliseconds, so new ids land on the rightmost pages, as a
sequence would, while staying unguessable (62 random bits) and globally
unique. Measured on the benchmark's books after a full run: the movement
function sustained 13-40% more transfers/s with version 7 ids, with a
quarter of the full-page images (bench/RESULTS.md).

Within a process the ids also come out in the order they were made
(RFC 9562 section 6.2, method 3): the 12 bits after the version carry the
fraction of the millisecond, and an id that would not sort after the
previous one takes the previous one plus one. The audit sealer's queue is
keyed by the record id and drains in that order, so records written one
after the other are chained one after the other (``audit.models.AuditPending``).

The creation time the id reveals is already in the row (``created_at``,
``at``) and shown to whoever may see the id.
"""

import os
import threading
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62
_RANDOM_BITS = (1 << 62) - 1
_last_clock = 0  # (unix_ms << 12 | fraction of the ms) of the last id this process made
_clock_guard = threading.Lock()


def uuid7() -> uuid.UUID:
    """A new version 7 UUID: 48 bits of Unix milliseconds, 12 bits of the millisecond's fraction
    (version and variant between), then 62 random bits; each later than the process's previous one."""
    global _last_clock
    now_ns = time.time_ns()
    clock = (now_ns // 1_000_000) << 12 | (now_ns % 1_000_000) * 4096 // 1_000_000
    with _clock_guard:
        clock = _last_clock = max(clock, _last_clock + 1)
    random_bits = int.from_bytes(os.urandom(8), "big") & _RANDOM_BITS
    return uuid.UUID(
        int=(clock >> 12 & 0xFFFF_FFFF_FFFF) << 80 | _VERSION_7 | (clock & 0xFFF) << 64 | _VARIANT_RFC | random_bits
    )
