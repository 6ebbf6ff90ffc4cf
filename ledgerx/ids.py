"""Identifiers of the rows that grow without bound: time-ordered UUIDs (version 7, RFC 9562).

A transaction and an audit record each put their id into several B-tree
indexes (primary keys, the journal entry's ``ref_id``, the audit record's
``target_id``, the seal's ``record_id``). With random (version 4) ids every
insert lands on a random leaf page of each: once those indexes outgrow the
buffer cache, inserts read pages back, and after every checkpoint nearly each
insert writes a full-page image to the WAL. A version 7 id starts with the
Unix time in milliseconds, so new ids land on the rightmost pages, as a
sequence would, while staying unguessable (74 random bits) and globally
unique. Measured on the benchmark's books after a full run: the movement
function sustained 13-40% more transfers/s with version 7 ids, with a
quarter of the full-page images (bench/analysis.md).

The creation time the id reveals is already in the row (``created_at``,
``at``) and shown to whoever may see the id.
"""

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62
_RANDOM_BITS = ~((0xF << 76) | (0x3 << 62)) & ((1 << 80) - 1)


def uuid7() -> uuid.UUID:
    """A new version 7 UUID: 48 bits of Unix milliseconds, then version, variant and 74 random bits."""
    unix_ms = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big") & _RANDOM_BITS
    return uuid.UUID(int=(unix_ms & 0xFFFF_FFFF_FFFF) << 80 | _VERSION_7 | _VARIANT_RFC | random_bits)
