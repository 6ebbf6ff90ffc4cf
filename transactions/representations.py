"""The transaction's public JSON shape, in plain Python.

Used both to render API responses and, inside the money transaction, to store
the exact response body in the idempotency record (domain code cannot use DRF
serializers). ``transactions.apis.TransactionOutputSerializer`` documents the
same shape for the OpenAPI schema and delegates here.
"""

from datetime import datetime

from transactions.models import Transaction


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a trailing Z, as DRF renders datetimes."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _reversed_by_id(txn: Transaction) -> str | None:
    # Only a reversed transaction has a reversal (both change in one database
    # transaction), so the others need no query.
    if txn.status != Transaction.Status.REVERSED:
        return None
    try:
        return str(txn.reversed_by.pk)
    except Transaction.reversed_by.RelatedObjectDoesNotExist:
        return None


def transaction_representation(txn: Transaction) -> dict:
    return {
        "id": str(txn.pk),
        "type": txn.type,
        "status": txn.status,
        "amount": txn.amount,
        "currency": txn.currency,
        "source_account": str(txn.source_account_id) if txn.source_account_id else None,
        "destination_account": str(txn.destination_account_id) if txn.destination_account_id else None,
        "description": txn.description,
        "metadata": txn.metadata,
        "created_at": timestamp(txn.created_at),
        "committed_at": timestamp(txn.committed_at),
        "reverses": str(txn.reverses_id) if txn.reverses_id else None,
        "reversed_by": _reversed_by_id(txn),
    }
