"""Reversals: a committed transaction undone by a new balanced entry (back office)."""

from django.db import transaction as db_transaction
from django.utils import timezone

from audit.models import AuditAction
from events.models import EventType
from events.services.recording import events_write, transaction_event
from ledger.services.locking import accounts_lock
from ledger.services.postings import entry_post
from ledgerx.exceptions import InvalidState
from ledgerx.ids import uuid7
from ledgerx.text import reason_clean
from transactions.models import Transaction
from transactions.movements import after_lock, check_actor_active
from transactions.representations import transaction_representation
from transactions.services.auditing import transaction_audit_write


def transaction_reverse(*, actor, transaction: Transaction, reason: str) -> Transaction:
    """Undo a committed transaction with a new balanced entry (back office).

    The reversal is a new ``reversal`` transaction whose entry negates every
    posting of the original; the original becomes ``reversed``. Frozen accounts
    are reversed too (a correction is not a customer movement). Raises
    ValidationFailed (empty reason), UserSuspended (the actor is suspended),
    InvalidState (a reversal, not committed, or already reversed),
    InsufficientFunds (a customer account would go below zero or below its holds).
    """
    reason = reason_clean(reason)
    with db_transaction.atomic(durable=True):
        reversal = reversal_write(actor=actor, transaction=transaction, reason=reason)
    transaction.status = Transaction.Status.REVERSED
    return reversal


def reversal_write(*, actor, transaction: Transaction, reason: str, **audit_extra) -> Transaction:
    """The locks, checks and writes of ``transaction_reverse``, in the caller's transaction.

    For a caller that must commit the reversal together with its own rows (an
    approved four-eyes request and its decision). ``reason`` must already be
    validated; ``audit_extra`` joins the reversal's audit record. Raises what
    ``transaction_reverse`` raises after its input checks.
    """
    if transaction.type == Transaction.Type.REVERSAL:
        raise InvalidState("A reversal cannot be reversed.")
    if transaction.entry_id is None:
        raise InvalidState(f"Only committed transactions can be reversed; this one is {transaction.status}.")
    postings = list(transaction.entry.postings.values_list("account_id", "amount"))
    with db_transaction.atomic(savepoint=False):
        lock = accounts_lock(ids=[account_id for account_id, _amount in postings], share_user=actor)
        check_actor_active(lock)  # a suspended admin moves no money either
        locked = lock.accounts
        original = Transaction.objects.select_for_update().get(pk=transaction.pk)
        if original.status != Transaction.Status.COMMITTED:
            raise InvalidState(f"Only committed transactions can be reversed; this one is {original.status}.")
        after_lock(locked)
        now = timezone.now()
        reversal_id = uuid7()
        entry = entry_post(
            ref_type="reversal",
            ref_id=reversal_id,
            lines=[(locked[account_id], -amount) for account_id, amount in postings],
            now=now,
        )
        reversal = Transaction.objects.create(
            id=reversal_id,
            type=Transaction.Type.REVERSAL,
            status=Transaction.Status.COMMITTED,
            **_reversal_legs(original),
            source_account_id=original.destination_account_id,
            destination_account_id=original.source_account_id,
            description=f"Reversal of {original.pk}",
            metadata={"reason": reason},
            entry=entry,
            reverses=original,
            initiated_by=actor,
            created_at=now,
            committed_at=now,
        )
        original.status = Transaction.Status.REVERSED
        original.save(update_fields=["status"])
        transaction_audit_write(
            actor=actor,
            action=AuditAction.TRANSACTION_REVERSED,
            txn=reversal,
            reverses=str(original.pk),
            reason=reason,
            old_status=Transaction.Status.COMMITTED,
            new_status=Transaction.Status.REVERSED,
            **audit_extra,
        )
        sides = [locked.get(original.source_account_id), locked.get(original.destination_account_id)]
        events_write([
            transaction_event(type=EventType.TRANSACTION_CREATED, data=transaction_representation(reversal), accounts=sides),
            transaction_event(type=EventType.TRANSACTION_REVERSED, data=transaction_representation(original), accounts=sides),
        ])
    return reversal


def _reversal_legs(original: Transaction) -> dict:
    """The reversal's amount fields: the original's, sides swapped; a conversion's both legs at its recorded rate."""
    if original.type != Transaction.Type.CONVERSION:
        return {"amount": original.amount, "currency": original.currency}
    return {
        "amount": original.destination_amount,
        "currency": original.destination_currency,
        "source_amount": original.destination_amount,
        "destination_amount": original.source_amount,
        "destination_currency": original.currency,
        "rate": original.rate,
    }
