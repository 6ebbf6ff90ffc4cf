"""The end of a hold: committed by its owner, voided by its owner, or expired by the system.

Each runs in its own durable transaction under the locks of both sides and
of the hold's row, so a hold is committed, voided or expired exactly once.
"""

from django.db import transaction as db_transaction
from django.utils import timezone

from audit.models import AuditAction
from events.models import EventType
from events.services.recording import transaction_event_record
from ledger.models import LedgerAccount
from ledger.services.locking import accounts_lock
from ledger.services.postings import entry_post, holds_adjust
from ledgerx.exceptions import Forbidden, InvalidState
from transactions.models import Transaction
from transactions.movements import after_lock, check_actor_active, check_can_move
from transactions.representations import transaction_representation
from transactions.services.auditing import transaction_audit_write


def _hold_sides(transaction: Transaction) -> list:
    """The ids of the accounts a hold's commit or release locks. Raises InvalidState for a non-hold."""
    if transaction.type != Transaction.Type.TRANSFER or transaction.destination_account_id is None:
        # Only transfers are ever holds (deposits/withdrawals have one customer side).
        raise InvalidState(f"This {transaction.type} is not a pending hold.")
    return [transaction.source_account_id, transaction.destination_account_id]


def _hold_pending(*, actor, transaction: Transaction, locked: dict) -> tuple[Transaction, LedgerAccount, LedgerAccount]:
    """The hold, locked, and its locked sides, once its accounts are ``locked``.

    Raises Forbidden (``actor`` not the source owner; None is the system),
    InvalidState (no longer pending).
    """
    current = Transaction.objects.select_for_update().get(pk=transaction.pk)
    src, dst = locked[current.source_account_id], locked[current.destination_account_id]
    if actor is not None and src.owner_id != actor.pk:
        raise Forbidden("Only the source account's owner can commit or void a hold.")
    if current.status != Transaction.Status.PENDING:
        raise InvalidState(f"The transaction is {current.status}, not a pending hold.")
    after_lock(locked)
    return current, src, dst


def _hold_release(*, hold: Transaction, src: LedgerAccount) -> None:
    """Give the held amount back to the source: the hold becomes voided, no journal entry."""
    holds_adjust(deltas={src: -hold.amount})
    hold.status = Transaction.Status.VOIDED
    hold.save(update_fields=["status"])


def _hold_recorded(*, actor, action: AuditAction, event: str, hold: Transaction, src, dst) -> None:
    """The audit record and the event of a hold's end, in its transaction."""
    transaction_audit_write(actor=actor, action=action, txn=hold)
    transaction_event_record(type=event, data=transaction_representation(hold), accounts=[src, dst])


def hold_commit(*, actor, transaction: Transaction) -> Transaction:
    """Turn a pending hold into a committed transfer (source owner only, no PIN).

    Raises Forbidden (not the source owner), UserSuspended, InvalidState (not
    pending; or expired, in which case it is voided first, as ``hold_expire``
    would), AccountFrozen.
    """
    sides = _hold_sides(transaction)
    with db_transaction.atomic(durable=True):
        lock = accounts_lock(ids=sides, share_user=actor)
        if actor is not None:
            check_actor_active(lock)
        current, src, dst = _hold_pending(actor=actor, transaction=transaction, locked=lock.accounts)
        now = timezone.now()
        expired = current.expires_at is not None and current.expires_at <= now
        if expired:
            # Past its expiry a hold can only be released: do it now (as expire_holds
            # would), so the money is available at once, then refuse the commit.
            _hold_release(hold=current, src=src)
            _hold_recorded(
                actor=None, action=AuditAction.HOLD_EXPIRED, event=EventType.TRANSACTION_EXPIRED,
                hold=current, src=src, dst=dst,
            )
        else:
            check_can_move(src, "source")
            check_can_move(dst, "destination")
            current.entry = entry_post(
                ref_type="transfer",
                ref_id=current.pk,
                lines=[(src, -current.amount), (dst, current.amount)],
                pending_deltas={src: -current.amount},
                now=now,
            )
            current.status = Transaction.Status.COMMITTED
            current.committed_at = now
            current.save(update_fields=["entry", "status", "committed_at"])
            _hold_recorded(
                actor=actor, action=AuditAction.HOLD_COMMITTED, event=EventType.TRANSACTION_COMMITTED,
                hold=current, src=src, dst=dst,
            )
    if expired:
        raise InvalidState("The hold has expired; it has been voided and its amount released.")
    return current


def hold_void(*, actor, transaction: Transaction) -> Transaction:
    """Release a pending hold (source owner only). Raises Forbidden, InvalidState."""
    return _hold_released(
        actor=actor, transaction=transaction, action=AuditAction.HOLD_VOIDED, event=EventType.TRANSACTION_VOIDED
    )


def _hold_released(*, actor, transaction: Transaction, action: AuditAction, event: str) -> Transaction:
    """Release a pending hold in its own transaction, recorded as ``action`` and ``event``.

    For ``hold_void`` (the owner) and ``hold_expire`` (the system, actor None).
    """
    sides = _hold_sides(transaction)
    with db_transaction.atomic(durable=True):
        lock = accounts_lock(ids=sides)
        current, src, dst = _hold_pending(actor=actor, transaction=transaction, locked=lock.accounts)
        _hold_release(hold=current, src=src)
        _hold_recorded(actor=actor, action=action, event=event, hold=current, src=src, dst=dst)
    return current


def hold_expire(*, now=None) -> int:
    """Void every pending hold whose ``expires_at`` has passed; returns how many.

    Each hold is released in its own short transaction (as the system, actor
    None), so a long backlog never holds many locks at once; a hold committed
    or voided concurrently is skipped.
    """
    now = now or timezone.now()
    due = list(
        Transaction.objects.filter(status=Transaction.Status.PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", "source_account_id", "destination_account_id")
    )
    expired = 0
    for pk, source_id, destination_id in due:
        stub = Transaction(
            pk=pk, type=Transaction.Type.TRANSFER, source_account_id=source_id, destination_account_id=destination_id
        )
        try:
            _hold_released(
                actor=None, transaction=stub, action=AuditAction.HOLD_EXPIRED, event=EventType.TRANSACTION_EXPIRED
            )
        except InvalidState:
            continue
        expired += 1
    return expired
