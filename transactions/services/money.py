"""New movements: deposits, withdrawals, transfers (and holds, which are pending transfers), conversions.

Each is decided completely before any query -- the unsaved transaction row,
its audit record and its event -- and handed to ``idempotent_run``, which
checks the PIN when one is needed and writes the movement with its
idempotency record (``transactions.movements``). A conversion is one item of
the batch engine (``transactions.batches.conversion_run``).
"""

import uuid
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from accounts.services import pin_proven, pin_verify
from audit.models import AuditAction
from events.models import EventType
from events.services.recording import transaction_event
from ledger.exceptions import CurrencyMismatch, SameAccount
from ledger.models import LedgerAccount
from ledgerx.exceptions import NotFound, ValidationFailed
from ledgerx.ids import uuid7
from transactions.batches import BatchItem, conversion_run
from transactions.idempotency import MoneyOutcome, idempotent_run, request_fingerprint
from transactions.movements import Movement
from transactions.models import Transaction
from transactions.representations import transaction_representation
from transactions.services.auditing import transaction_audit
from transactions.services.inputs import input_validate


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
    audit = transaction_audit(actor=actor, action=action, txn=txn, body=body, **audit_extra)
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
    input_validate(amount=amount, description=description, metadata=metadata)
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
    input_validate(amount=amount, description=description, metadata=metadata)
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
    input_validate(amount=amount, description=description, metadata=metadata)
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
    input_validate(amount=1, description=description, metadata=metadata)
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
