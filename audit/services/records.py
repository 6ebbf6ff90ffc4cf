"""Writing audit records: in the caller's transaction, queued for sealing once it commits."""

from typing import Any

from django.db import transaction

from audit.models import AuditAction, AuditPending, AuditRecord
from audit.services.sealing import audit_seal_after_commit
from ledgerx.context import current_client_ip, current_request_id
from ledgerx.fastsql import rows_insert


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

