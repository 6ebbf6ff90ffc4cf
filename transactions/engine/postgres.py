"""The calls of the engine's SQL functions by named arguments, each from one parameter table.

``ledgerx_movement_create`` (``sql/movements.sql``, a single movement) and
``ledgerx_batch_apply`` (``sql/batches.sql``, a batch or one conversion).

``PARAMETERS`` / ``BATCH_PARAMETERS`` are the one table of each function's
parameters: name, SQL type, and how the value is read from the call. Each
call's text (prepared once per connection, ``ledgerx.fastsql.prepared_cursor``)
and its values are both built from it, and
``transactions/tests/test_movement_function.py`` checks it against the
installed function's arguments, so a parameter cannot be added, dropped or
moved in one place only. ``transactions.movements`` and
``transactions.batches`` run the calls.
"""

import json
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder

from ledgerx.fastsql import array_literal
from transactions.models import Transaction

FUNCTION = "ledgerx_movement_create"


@dataclass(frozen=True)
class Call:
    movement: object  # transactions.movements.Movement
    record: object  # its unsaved IdempotencyRecord
    system: object  # the system shard's id, or None
    lock_key: int | None
    unlock_session: bool


# (name, SQL type, value from the call) -- in the function's declaration order.
PARAMETERS = (
    ("p_lock_key", "bigint", lambda c: c.lock_key),
    ("p_unlock", "boolean", lambda c: c.unlock_session),
    ("p_actor", "uuid", lambda c: c.movement.actor.pk),
    ("p_type", "text", lambda c: c.movement.txn.type),
    ("p_hold", "boolean", lambda c: c.movement.txn.status == Transaction.Status.PENDING),
    ("p_source", "uuid", lambda c: c.movement.txn.source_account_id),
    ("p_destination", "uuid", lambda c: c.movement.txn.destination_account_id),
    ("p_system", "uuid", lambda c: c.system),
    ("p_currency", "text", lambda c: c.movement.txn.currency),
    ("p_amount", "bigint", lambda c: c.movement.txn.amount),
    ("p_txn_id", "uuid", lambda c: c.movement.txn.pk),
    ("p_now", "timestamptz", lambda c: c.movement.txn.created_at),
    ("p_expires_at", "timestamptz", lambda c: c.movement.txn.expires_at),
    ("p_description", "text", lambda c: c.movement.txn.description),
    ("p_metadata", "jsonb", lambda c: json.dumps(c.movement.txn.metadata)),
    ("p_endpoint", "text", lambda c: c.record.endpoint),
    ("p_key", "text", lambda c: c.record.key),
    ("p_fingerprint", "text", lambda c: c.record.fingerprint),
    ("p_body", "jsonb", lambda c: json.dumps(c.record.response_body)),
    ("p_audit_id", "uuid", lambda c: c.movement.audit.pk),
    ("p_audit_action", "text", lambda c: c.movement.audit.action),
    ("p_audit_ip", "inet", lambda c: c.movement.audit.ip),
    ("p_audit_request_id", "text", lambda c: c.movement.audit.request_id),
    ("p_audit_data", "jsonb", lambda c: json.dumps(c.movement.audit.data, cls=DjangoJSONEncoder)),
)

CALL_SQL = (
    f"SELECT * FROM {FUNCTION}(" + ", ".join(f"{name} => %s::{kind}" for name, kind, _value in PARAMETERS) + ")"
)


def call_params(call: Call) -> list:
    return [value(call) for _name, _kind, value in PARAMETERS]


# --- ledgerx_batch_apply (sql/batches.sql): a batch's items, or one conversion ------------

BATCH_FUNCTION = "ledgerx_batch_apply"


@dataclass(frozen=True)
class BatchCall:
    actor: object  # accounts.User
    endpoint: str
    key: str
    fingerprint: str
    batch_id: object  # the batch row's id, or None (POST conversions: the one transaction is the answer)
    atomic: bool
    items: list  # of transactions.batches.BatchItem
    txn_ids: list  # one per item, used if it is applied
    audit_ids: list
    event_ids: list
    batch_event_id: object
    shards: list  # candidate system shard ids: one per currency and role the items may need
    hold_ttl: object  # timedelta
    audit_actions: dict  # {item type or "hold": audit action}
    errors: dict  # {refusal code or variant: {code, message}} (transactions.engine.codes.ITEM_ERRORS)
    audit_ip: str | None
    audit_request_id: str
    lock_key: int | None
    unlock_session: bool


# (name, SQL type, value from the call) -- in the function's declaration order.
BATCH_PARAMETERS = (
    ("p_lock_key", "bigint", lambda c: c.lock_key),
    ("p_unlock", "boolean", lambda c: c.unlock_session),
    ("p_actor", "uuid", lambda c: c.actor.pk),
    ("p_endpoint", "text", lambda c: c.endpoint),
    ("p_key", "text", lambda c: c.key),
    ("p_fingerprint", "text", lambda c: c.fingerprint),
    ("p_batch_id", "uuid", lambda c: c.batch_id),
    ("p_atomic", "boolean", lambda c: c.atomic),
    ("p_types", "text[]", lambda c: [item.type for item in c.items]),
    ("p_amounts", "bigint[]", lambda c: array_literal(item.amount for item in c.items)),
    ("p_debits", "uuid[]", lambda c: array_literal(item.debited for item in c.items)),
    ("p_credits", "uuid[]", lambda c: array_literal(item.credited for item in c.items)),
    ("p_holds", "boolean[]", lambda c: array_literal(bool(item.hold) for item in c.items)),
    ("p_quotes", "uuid[]", lambda c: array_literal(item.quote for item in c.items)),
    ("p_descriptions", "text[]", lambda c: [item.description for item in c.items]),
    ("p_metadata", "jsonb[]", lambda c: [json.dumps(item.metadata or {}) for item in c.items]),
    ("p_txn_ids", "uuid[]", lambda c: array_literal(c.txn_ids)),
    ("p_audit_ids", "uuid[]", lambda c: array_literal(c.audit_ids)),
    ("p_event_ids", "uuid[]", lambda c: array_literal(c.event_ids)),
    ("p_batch_event_id", "uuid", lambda c: c.batch_event_id),
    ("p_shards", "uuid[]", lambda c: array_literal(c.shards)),
    ("p_hold_ttl", "interval", lambda c: c.hold_ttl),
    ("p_audit_actions", "jsonb", lambda c: json.dumps(c.audit_actions)),
    ("p_errors", "jsonb", lambda c: json.dumps(c.errors)),
    ("p_audit_ip", "inet", lambda c: c.audit_ip),
    ("p_audit_request_id", "text", lambda c: c.audit_request_id),
)

BATCH_CALL_SQL = (
    f"SELECT * FROM {BATCH_FUNCTION}("
    + ", ".join(f"{name} => %s::{kind}" for name, kind, _value in BATCH_PARAMETERS)
    + ")"
)


def batch_call_params(call: BatchCall) -> list:
    return [value(call) for _name, _kind, value in BATCH_PARAMETERS]
