"""A batch's items and outcomes: the shapes both engine paths share (``transactions.batches``)."""

import uuid
from dataclasses import dataclass

from audit.models import AuditAction
from ledger.models import LedgerAccount
from ledgerx.exceptions import LedgerXError
from transactions.models import Batch, Transaction

MAX_ITEMS = 1000
ENDPOINT = "batches"
CONVERSION_ENDPOINT = "conversions"

AUDIT_ACTIONS = {
    Transaction.Type.DEPOSIT: AuditAction.DEPOSIT_CREATED,
    Transaction.Type.WITHDRAWAL: AuditAction.WITHDRAWAL_CREATED,
    Transaction.Type.TRANSFER: AuditAction.TRANSFER_CREATED,
    Transaction.Type.CONVERSION: AuditAction.CONVERSION_CREATED,
}
FX_POOL = LedgerAccount.SystemRole.FX_POOL


@dataclass(frozen=True)
class BatchItem:
    """One movement of a batch, its shape already checked (``transactions.apis``)."""

    type: str
    amount: int = 0  # a conversion's amounts are its quote's
    account: uuid.UUID | None = None  # deposit, withdrawal
    source_account: uuid.UUID | None = None  # transfer, conversion
    destination_account: uuid.UUID | None = None  # transfer, conversion
    description: str = ""
    metadata: dict | None = None
    hold: bool = False
    quote: uuid.UUID | None = None  # conversion

    @property
    def debited(self) -> uuid.UUID | None:
        if self.type == Transaction.Type.WITHDRAWAL:
            return self.account
        return self.source_account

    @property
    def credited(self) -> uuid.UUID | None:
        if self.type == Transaction.Type.DEPOSIT:
            return self.account
        return self.destination_account

    def canonical(self) -> dict:
        return {
            "type": self.type,
            "amount": self.amount,
            "account": self.account,
            "source_account": self.source_account,
            "destination_account": self.destination_account,
            "description": self.description,
            "metadata": self.metadata or {},
            "hold": self.hold,
            # Only conversions name a quote: the other items' fingerprints stay what they were.
            **({"quote": self.quote} if self.quote is not None else {}),
        }


@dataclass(frozen=True)
class BatchOutcome:
    batch: Batch
    status: int
    body: dict
    replayed: bool


class BatchItemRefused(LedgerXError):
    """An atomic batch's first refused item: its own error, with the item's ``index``."""

    def __init__(self, *, index: int, error: LedgerXError):
        super().__init__(error.message, fields=error.fields, index=index, **error.extra)
        self.code = error.code
        self.status = error.status


def system_role(item: BatchItem) -> str:
    """The system account on the house's side of ``item`` (a transfer has none)."""
    return {
        Transaction.Type.DEPOSIT: LedgerAccount.SystemRole.FUNDING,
        Transaction.Type.WITHDRAWAL: LedgerAccount.SystemRole.PAYOUTS,
        Transaction.Type.CONVERSION: FX_POOL,
    }.get(item.type, "")
