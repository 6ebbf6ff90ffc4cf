"""The one way to write an audit record."""

from typing import Any

from audit.models import AuditAction, AuditRecord
from ledgerx.context import current_client_ip, current_request_id


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
    from the request context (None outside a request).
    """
    return AuditRecord.objects.create(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        ip=current_client_ip() if current_client_ip() not in (None, "unknown") else None,
        request_id=current_request_id() or "",
        data=data or {},
    )
