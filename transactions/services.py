"""Money movement: deposits, withdrawals, transfers, holds, reversals.

Every service here follows one shape: validate the input's shape (no
queries), check the PIN (bcrypt, in its own transaction, before any lock),
then in ONE ``transaction.atomic(durable=True)``: lock the actor's user row
(FOR SHARE) and every ledger account touched (one ``SELECT ... FOR UPDATE`` in
primary-key order, ``ledger.services.accounts_lock``), check status, currency
and available balance under the lock, write the journal entry / holds
(``ledger.services.entry_post`` / ``holds_adjust``), the transaction row, the
idempotency record and the audit record. Balance caches refresh on commit.

Idempotency: the three creating services take the raw ``idempotency_key``
(the ``Idempotency-Key`` header) and return a ``MoneyOutcome`` (transaction,
response status and body, replayed flag); the request fingerprint is computed
here from the service's own arguments without the PIN
(``transactions.idempotency``). The API layer only renders the outcome.
"""

import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import transaction as db_transaction
from django.utils import timezone

from accounts.services import pin_proven, pin_verify
from audit.models import AuditAction, AuditRecord
from audit.services.records import audit_record_unsaved, audit_rows_queued
from events.models import EventType
from events.services.recording import events_write, transaction_event, transaction_event_record
from ledger.exceptions import CurrencyMismatch, SameAccount
from ledger.models import LedgerAccount
from ledger.money import amount_valid
from ledger.services.locking import accounts_lock
from ledger.services.postings import entry_post, holds_adjust
from ledgerx.exceptions import Forbidden, InvalidState, NotFound, ValidationFailed
from ledgerx.fastsql import rows_insert
from ledgerx.ids import uuid7
from ledgerx.text import reason_clean, text_error
from transactions.batches import BatchItem, conversion_run
from transactions.idempotency import MoneyOutcome, idempotent_run, request_fingerprint
from transactions.movements import Movement, after_lock, check_actor_active, check_can_move
from transactions.models import IdempotencyRecord, Transaction
from transactions.representations import transaction_representation

METADATA_MAX_KEYS = 20
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 512
DESCRIPTION_MAX = 500

# --- Input shape ------------------------------------------------------------------------


def metadata_errors(metadata) -> list[str]:
    if not isinstance(metadata, dict):
        return ["Must be an object."]
    errors = []
    if len(metadata) > METADATA_MAX_KEYS:
        errors.append(f"At most {METADATA_MAX_KEYS} keys.")
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= METADATA_KEY_MAX:
            errors.append(f"Keys are strings of 1 to {METADATA_KEY_MAX} characters.")
            break
        if not isinstance(value, str) or len(value) > METADATA_VALUE_MAX:
            errors.append(f"Values are strings of at most {METADATA_VALUE_MAX} characters.")
            break
        if problem := text_error(key) or text_error(value):
            errors.append(f"Keys and values: {problem}")
            break
    return errors


def _input_validate(*, amount, description, metadata) -> None:
    """Raises ValidationFailed with per-field messages; runs no query."""
    fields: dict[str, list[str]] = {}
    if not amount_valid(amount):
        fields["amount"] = [f"Must be an integer number of minor units, 1 to {settings.MAX_AMOUNT}."]
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
        fields["description"] = [f"Must be a string of at most {DESCRIPTION_MAX} characters."]
    elif problem := text_error(description):
        fields["description"] = [problem]
    if metadata is not None and (errors := metadata_errors(metadata)):
        fields["metadata"] = errors
    if fields:
        raise ValidationFailed(fields=fields)


def _audit(*, actor, action: AuditAction, txn: Transaction, body: dict | None = None, **extra) -> AuditRecord | None:
    """The audit record of a money event, unsaved (``audit.services.records.audit_record_unsaved``).

    New movements hand it to ``transactions.movements`` (written in the
    movement's own statement); the others save it with ``_audit_write``.
    """
    return audit_record_unsaved(
        actor=actor,
        action=action,
        target_type="transaction",
        target_id=txn.pk,
        data={**(body or transaction_representation(txn)), **extra},
    )


def _audit_write(**kwargs) -> None:
    record = _audit(**kwargs)
    if record is not None:
        rows_insert(*audit_rows_queued(record))


# --- Deposits, withdrawals and transfers ------------------------------------------------


def _pin_checked(*, actor, pin: str) -> dict:
    """``idempotent_run``'s PIN step for a movement that needs the actor's PIN (see there)."""
    return {
        "before": lambda: pin_verify(user=actor, pin=pin),
        "before_needless": lambda: pin_proven(user=actor, pin=pin),
    }


def _movement_run(
    *,
    actor,
    endpoint: str,
    fingerprint: str,
    idempotency_key: str,
    txn: Transaction,
    action: AuditAction,
    system_role: str,
    accounts: list[LedgerAccount],
    before: Callable[[], None] | None = None,
    before_needless: Callable[[], bool] | None = None,
    **audit_extra,
) -> MoneyOutcome:
    """Write the new movement ``txn`` under ``idempotency_key``, with its audit record and event.

    ``system_role``: the system account on the other side (deposits and
    withdrawals), "" for a transfer; ``accounts``: the customer accounts whose
    owners see the event.
    """
    body = transaction_representation(txn)
    audit = _audit(actor=actor, action=action, txn=txn, body=body, **audit_extra)
    return idempotent_run(
        user=actor,
        endpoint=endpoint,
        key=idempotency_key,
        fingerprint=fingerprint,
        movement=Movement(
            actor=actor, txn=txn, body=body, system_role=system_role, audit=audit,
            events=(transaction_event(type=EventType.TRANSACTION_CREATED, data=body, accounts=accounts),),
        ),
        before=before,
        before_needless=before_needless,
    )


def _external_fingerprint(endpoint: str, *, account: LedgerAccount, amount: int, description: str, metadata: dict) -> str:
    return request_fingerprint(
        endpoint, {"account": str(account.pk), "amount": amount, "description": description, "metadata": metadata}
    )


def _committed_transaction(**fields) -> Transaction:
    """A new transaction row (unsaved) committed now."""
    now = timezone.now()
    return Transaction(id=uuid7(), status=Transaction.Status.COMMITTED, created_at=now, committed_at=now, **fields)


def deposit_create(
    *, actor, account: LedgerAccount, amount: int, idempotency_key: str, description: str = "", metadata: dict | None = None
) -> MoneyOutcome:
    """Fund ``account`` from the outside world (counterpart: the currency's funding account).

    ``actor`` must own the account (or be an admin). No PIN. Raises
    ValidationFailed, NotFound, UserSuspended, AccountFrozen, and the
    idempotency errors (see ``transactions.idempotency``).
    """
    _input_validate(amount=amount, description=description, metadata=metadata)
    if not account.is_customer or (account.owner_id != actor.pk and not actor.is_admin):
        raise NotFound()
    metadata = metadata or {}
    txn = _committed_transaction(
        type=Transaction.Type.DEPOSIT, amount=amount, currency=account.currency, source_account=None,
        destination_account=account, description=description, metadata=metadata, initiated_by=actor,
    )
    return _movement_run(
        actor=actor,
        endpoint="deposits",
        fingerprint=_external_fingerprint(
            "deposits", account=account, amount=amount, description=description, metadata=metadata
        ),
        idempotency_key=idempotency_key,
        txn=txn,
        action=AuditAction.DEPOSIT_CREATED,
        system_role=LedgerAccount.SystemRole.FUNDING,
        accounts=[account],
    )


def withdrawal_create(
    *,
    actor,
    account: LedgerAccount,
    amount: int,
    pin: str,
    idempotency_key: str,
    description: str = "",
    metadata: dict | None = None,
) -> MoneyOutcome:
    """Pay out from the actor's ``account`` to the outside world (counterpart: payouts).

    The available balance is checked under the account's lock. Raises
    ValidationFailed, NotFound, PinNotSet/InvalidPin/UserSuspended,
    AccountFrozen, InsufficientFunds, and the idempotency errors.
    """
    _input_validate(amount=amount, description=description, metadata=metadata)
    if not account.is_customer or account.owner_id != actor.pk:
        raise NotFound()
    metadata = metadata or {}
    txn = _committed_transaction(
        type=Transaction.Type.WITHDRAWAL, amount=amount, currency=account.currency, source_account=account,
        destination_account=None, description=description, metadata=metadata, initiated_by=actor,
    )
    return _movement_run(
        actor=actor,
        endpoint="withdrawals",
        fingerprint=_external_fingerprint(
            "withdrawals", account=account, amount=amount, description=description, metadata=metadata
        ),
        idempotency_key=idempotency_key,
        txn=txn,
        action=AuditAction.WITHDRAWAL_CREATED,
        system_role=LedgerAccount.SystemRole.PAYOUTS,
        accounts=[account],
        **_pin_checked(actor=actor, pin=pin),
    )


def transfer_create(
    *,
    actor,
    source: LedgerAccount,
    destination: LedgerAccount,
    amount: int,
    pin: str,
    idempotency_key: str,
    hold: bool = False,
    description: str = "",
    metadata: dict | None = None,
) -> MoneyOutcome:
    """Move money from the actor's ``source`` to any customer account of the same currency.

    With ``hold=True`` the result is a pending transaction that only reserves
    the amount on the source (pending += amount; no journal entry until
    ``hold_commit``); it expires after ``settings.HOLD_TTL``. Raises
    ValidationFailed, NotFound, SameAccount, CurrencyMismatch,
    PinNotSet/InvalidPin/UserSuspended, AccountFrozen, InsufficientFunds, and
    the idempotency errors.
    """
    _input_validate(amount=amount, description=description, metadata=metadata)
    if type(hold) is not bool:
        raise ValidationFailed(fields={"hold": ["Must be true or false."]})
    if not source.is_customer or source.owner_id != actor.pk or not destination.is_customer:
        raise NotFound()
    if source.pk == destination.pk:
        raise SameAccount()
    if source.currency != destination.currency:
        raise CurrencyMismatch()
    metadata = metadata or {}
    fingerprint = request_fingerprint(
        "transfers",
        {
            "source_account": str(source.pk),
            "destination_account": str(destination.pk),
            "amount": amount,
            "hold": hold,
            "description": description,
            "metadata": metadata,
        },
    )

    now = timezone.now()
    txn = Transaction(
        id=uuid7(),
        type=Transaction.Type.TRANSFER,
        amount=amount,
        currency=source.currency,
        source_account=source,
        destination_account=destination,
        description=description,
        metadata=metadata,
        initiated_by=actor,
        created_at=now,
    )
    if hold:
        txn.status = Transaction.Status.PENDING
        txn.expires_at = now + settings.HOLD_TTL
        action, extra = AuditAction.HOLD_CREATED, {"expires_at": txn.expires_at.isoformat()}
    else:
        txn.status = Transaction.Status.COMMITTED
        txn.committed_at = now
        action, extra = AuditAction.TRANSFER_CREATED, {}
    return _movement_run(
        actor=actor,
        endpoint="transfers",
        fingerprint=fingerprint,
        idempotency_key=idempotency_key,
        txn=txn,
        action=action,
        system_role="",
        accounts=[source, destination],
        **_pin_checked(actor=actor, pin=pin),
        **extra,
    )


# --- Conversions ------------------------------------------------------------------------


def conversion_create(
    *,
    actor,
    quote_id,
    source: LedgerAccount,
    destination: LedgerAccount,
    pin: str,
    idempotency_key: str,
    description: str = "",
    metadata: dict | None = None,
) -> MoneyOutcome:
    """Convert between two of the actor's accounts at the amounts and rate of the actor's quote (``fx``).

    A movement of the batch engine with one conversion item
    (``transactions.batches.conversion_run``): the same locks, refusal order,
    audit, events and cache refresh as any movement. Raises
    ValidationFailed, NotFound (an account or the quote not the actor's),
    SameAccount, CurrencyMismatch (not the quote's currencies),
    PinNotSet/InvalidPin/UserSuspended, QuoteExpired (expired or used),
    AccountFrozen, InsufficientFunds, BalanceLimit, and the idempotency errors.
    """
    _input_validate(amount=1, description=description, metadata=metadata)
    try:
        quote_id = quote_id if isinstance(quote_id, uuid.UUID) else uuid.UUID(str(quote_id))
    except ValueError:
        raise ValidationFailed(fields={"quote": ["Must be a valid UUID."]}) from None
    if not source.is_customer or source.owner_id != actor.pk or not destination.is_customer or destination.owner_id != actor.pk:
        raise NotFound()
    metadata = metadata or {}
    item = BatchItem(
        type=Transaction.Type.CONVERSION,
        source_account=source.pk,
        destination_account=destination.pk,
        quote=quote_id,
        description=description,
        metadata=metadata,
    )
    fingerprint = request_fingerprint(
        "conversions",
        {
            "quote": str(quote_id),
            "source_account": str(source.pk),
            "destination_account": str(destination.pk),
            "description": description,
            "metadata": metadata,
        },
    )
    return conversion_run(actor=actor, item=item, pin=pin, idempotency_key=idempotency_key, fingerprint=fingerprint)


# --- Holds ------------------------------------------------------------------------------


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
    _audit_write(actor=actor, action=action, txn=hold)
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


# --- Reversals --------------------------------------------------------------------------


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
        _audit_write(
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


# --- Housekeeping -----------------------------------------------------------------------


def idempotency_purge(*, now=None, batch: int = 5000) -> int:
    """Delete idempotency records older than ``settings.IDEMPOTENCY_RETENTION``, in batches.

    Keys stay bound at least that long (the contract promises 24 h).
    """
    cutoff = (now or timezone.now()) - settings.IDEMPOTENCY_RETENTION
    purged = 0
    while True:
        ids = list(IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch])
        if not ids:
            return purged
        purged += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
