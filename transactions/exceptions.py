"""Typed errors of money movement (ledger errors live in ``ledger.exceptions``)."""

from ledgerx.exceptions import LedgerXError


class IdempotencyKeyRequired(LedgerXError):
    code = "idempotency_key_required"
    status = 400
    default_message = "Send an Idempotency-Key header (1-255 printable characters) with money-moving requests."


class IdempotencyKeyReused(LedgerXError):
    code = "idempotency_key_reused"
    status = 422
    default_message = "This Idempotency-Key was already used with a different request."


class IdempotencyInProgress(LedgerXError):
    code = "idempotency_in_progress"
    status = 409
    default_message = "A request with this Idempotency-Key is still being processed; retry shortly."
