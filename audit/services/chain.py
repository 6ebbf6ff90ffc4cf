"""The hash chain's links: the canonical form of a record and the hash that chains it to the previous one.

One definition for the sealer and for verification, so a record hashes the
same whoever reads it.
"""

import hashlib
import json

from audit.models import AuditRecord

GENESIS_HASH = "0" * 64

# The record's fields that are hashed, in the order ``record_canonical`` takes their values.
CANONICAL_FIELDS = ("id", "at", "actor", "action", "target_type", "target_id", "ip", "request_id", "data")
_RECORD_FIELDS = tuple(AuditRecord._meta.get_field(name) for name in CANONICAL_FIELDS)
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_canonical(id, at, actor_id, action, target_type, target_id, ip, request_id, data) -> bytes:
    """THE canonical serialization that is hashed: sorted-key JSON, UTC timestamps.

    Takes the record's values (``CANONICAL_FIELDS``, in that order) exactly as
    the ORM loads them: ``id`` a UUID, ``at`` an aware UTC datetime, ``ip`` text
    or None, ``data`` the stored JSON decoded. Sealing and ``audit_chain_verify``
    both read them with ``record_converter`` (the ORM's own converters, no
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
RECORD_COLUMNS = ", ".join(f'r."{field.column}"' for field in _RECORD_FIELDS)


def record_converter(conn):
    """Turns the ``RECORD_COLUMNS`` of a row into the values ``record_canonical`` takes.

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
