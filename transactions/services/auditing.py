"""The audit record of a money event: the transaction as the API shows it, plus the event's own fields."""

from audit.models import AuditAction, AuditRecord
from audit.services.records import audit_record_unsaved, audit_rows_queued
from ledgerx.fastsql import rows_insert
from transactions.models import Transaction
from transactions.representations import transaction_representation


def transaction_audit(*, actor, action: AuditAction, txn: Transaction, body: dict | None = None, **extra) -> AuditRecord:
    """The audit record of a money event, unsaved (``audit.services.records.audit_record_unsaved``).

    New movements hand it to ``transactions.movements`` (written in the
    movement's own statement); the others save it with ``transaction_audit_write``.
    """
    return audit_record_unsaved(
        actor=actor,
        action=action,
        target_type="transaction",
        target_id=txn.pk,
        data={**(body or transaction_representation(txn)), **extra},
    )


def transaction_audit_write(**kwargs) -> None:
    """``transaction_audit``, written now (with its sealing-queue row) in the caller's transaction."""
    rows_insert(*audit_rows_queued(transaction_audit(**kwargs)))
