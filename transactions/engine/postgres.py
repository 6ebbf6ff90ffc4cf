"""The call of ``ledgerx_movement_create`` (``sql/movements.sql``) by named arguments, from one parameter table.

``PARAMETERS`` is the one table of the function's parameters: name, SQL type,
and how the value is read from the call. The call's text (prepared once per
connection, ``ledgerx.fastsql.prepared_cursor``) and its values are both
built from it, and ``transactions/tests/test_movement_function.py`` checks it
against the installed function's arguments, so a parameter cannot be added,
dropped or moved in one place only. ``transactions.movements`` runs the call.
"""

import json
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder

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
