"""The transaction's public JSON shape, in plain Python.

Used both to render API responses and, inside the money transaction, to store
the exact response body in the idempotency record (domain code cannot use DRF
serializers). ``transactions.apis.TransactionOutputSerializer`` documents the
same shape for the OpenAPI schema and delegates here.
"""

import uuid
from datetime import datetime

from fx.rounding import rate_text
from transactions.models import Batch, Transaction


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
    body = {
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
        "batch": str(txn.batch_id) if txn.batch_id else None,
    }
    if txn.source_amount is not None:
        # A conversion (or its reversal): both legs and the recorded rate; ``amount``/``currency`` are the source leg.
        body.update(
            source_amount=txn.source_amount,
            destination_amount=txn.destination_amount,
            destination_currency=txn.destination_currency,
            rate=rate_text(txn.rate),
            quote=str(txn.quote_id) if txn.quote_id else None,
        )
    return body


def batch_representation(batch: Batch, transactions: dict) -> dict:
    """The batch as the API shows it; ``transactions`` maps the ids its results name to their rows."""
    return {
        "id": str(batch.pk),
        "atomic": batch.atomic,
        "status": batch.status,
        "created_at": timestamp(batch.created_at),
        "count": batch.count,
        "succeeded": batch.succeeded,
        "failed": batch.failed,
        "results": [
            {
                "index": result["index"],
                "status": result["status"],
                "transaction": transaction_representation(transactions[_uuid(result["transaction"])])
                if result["transaction"]
                else None,
                "error": result["error"],
            }
            for result in batch.results
        ],
    }


def _uuid(value):
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)
