"""Batches: many movements of one user in one request, under one lock, in one commit.

``batch_create`` applies deposits, withdrawals and transfers (holds too) in the
order given, each seeing the balances the earlier ones left:

1. The whole request first, in the order singles follow: the idempotency key
   (a bound key replays the stored batch, another body is 422), the in-flight
   guard (409 ``idempotency_in_progress``), the PIN once for the whole batch
   when any item debits (``accounts.services.pin_verify``: a wrong PIN counts
   once and applies nothing).
2. One durable transaction: every account any item touches -- with one
   funding or payouts shard per currency -- locked by ONE ``SELECT ... FOR
   UPDATE`` in primary-key order (``ledger.services.accounts_lock``), so
   crossing batches and singles never deadlock; the actor's status read under
   the same statement (a suspended user moves nothing).
3. Each item, against the locked rows in memory, refused by the first rule it
   breaks, in the order of the single endpoints: the accounts exist, are
   customer accounts and the debited one is the caller's (``not_found``) ->
   not the same account (``same_account``) -> one currency
   (``currency_mismatch``) -> source not frozen -> destination not frozen
   (``account_frozen``) -> funds (``insufficient_funds``) -> the credited
   balance stays within ``BALANCE_LIMIT`` (``balance_limit``). A refused item
   changes nothing in memory, so a non-atomic batch needs no savepoint per
   item; an atomic batch stops at the first refusal and nothing is written.
4. The rows of every applied item written set-based: entries, postings,
   transactions, audit records and their sealing queue rows, one balance
   UPDATE per account, the batch and its one idempotency record. Every item is
   booked at one moment read under the locks (the database clock on
   PostgreSQL), which is each transaction's ``committed_at`` and its postings'
   ``created_at``: ``balance?as_of=<committed_at>`` includes the whole batch.

The account cache and the audit sealer run after commit.
"""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.exceptions import UserSuspended
from accounts.services import pin_verify
from audit.models import AuditAction, AuditPending
from audit.services import audit_record_unsaved, audit_seal_after_commit
from events.models import EventType
from events.services import batch_event_record, events_write, transaction_event
from ledger.balance_cache import Snapshot, balance_cache_store
from ledger.exceptions import BALANCE_LIMIT, AccountFrozen, BalanceLimit, CurrencyMismatch, InsufficientFunds, SameAccount
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.services import (
    SystemAccountMissing,
    accounts_lock,
    balances_save,
    system_accounts_ensure,
    system_shard_pick,
    system_shards_forget,
)
from ledgerx.exceptions import LedgerXError, NotFound, ValidationFailed
from ledgerx.fastsql import insert_statement
from ledgerx.ids import uuid7
from transactions.idempotency import (
    _in_flight_guard,
    _record_find,
    idempotency_key_validate,
    request_fingerprint,
)
from transactions.exceptions import IdempotencyKeyReused
from transactions.models import Batch, IdempotencyRecord, Transaction
from transactions.representations import batch_representation, transaction_representation

MAX_ITEMS = 1000
ENDPOINT = "batches"
_INSERT_CHUNK = 500  # rows per INSERT statement (PostgreSQL takes at most 65535 parameters)

_AUDIT_ACTIONS = {
    Transaction.Type.DEPOSIT: AuditAction.DEPOSIT_CREATED,
    Transaction.Type.WITHDRAWAL: AuditAction.WITHDRAWAL_CREATED,
    Transaction.Type.TRANSFER: AuditAction.TRANSFER_CREATED,
}


@dataclass(frozen=True)
class BatchItem:
    """One movement of a batch, its shape already checked (``transactions.apis``)."""

    type: str
    amount: int
    account: uuid.UUID | None = None  # deposit, withdrawal
    source_account: uuid.UUID | None = None  # transfer
    destination_account: uuid.UUID | None = None  # transfer
    description: str = ""
    metadata: dict | None = None
    hold: bool = False

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


def batch_create(
    *, actor, items: list[BatchItem], atomic: bool = True, pin: str | None = None, idempotency_key: str
) -> BatchOutcome:
    """Apply ``items`` in order for ``actor``; see the module docstring.

    Raises ValidationFailed (no items, too many, a PIN missing), the
    idempotency errors, the PIN errors, UserSuspended, and (atomic) the first
    refused item's error as BatchItemRefused.
    """
    idempotency_key_validate(idempotency_key)
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ValidationFailed(fields={"items": [f"Send 1 to {MAX_ITEMS} items."]})
    needs_pin = any(item.type != Transaction.Type.DEPOSIT for item in items)
    if needs_pin and not isinstance(pin, str):
        raise ValidationFailed(fields={"pin": ["A PIN is required when an item is a withdrawal or a transfer."]})
    fingerprint = request_fingerprint(ENDPOINT, {"atomic": atomic, "items": [item.canonical() for item in items]})
    guard = _in_flight_guard(actor, ENDPOINT, idempotency_key)
    try:
        if guard.claim_and_probe(user=actor, endpoint=ENDPOINT, key=idempotency_key):
            replay = _replay(actor, idempotency_key, fingerprint)
            if replay is not None:
                return replay
        if needs_pin:
            pin_verify(user=actor, pin=pin)
        for currency in {item_currency for item_currency in _system_currencies(items)}:
            _system_shards_ready(currency)
        try:
            for attempt in (1, 2):
                try:
                    with transaction.atomic(durable=True):
                        return _apply(actor=actor, items=items, atomic=atomic, key=idempotency_key, fingerprint=fingerprint)
                except SystemAccountMissing as missing:
                    # The shard ids this process remembered are gone (a test database flushed
                    # under it): forget them, make sure the shards exist, try once more.
                    if attempt == 2:
                        raise
                    system_shards_forget()
                    system_accounts_ensure(currency=missing.args[0])
        except IntegrityError:
            # The key was bound meanwhile by a duplicate that won: ours rolled back.
            replay = _replay(actor, idempotency_key, fingerprint)
            if replay is None:
                raise
            return replay
    finally:
        guard.release()


def _replay(actor, key: str, fingerprint: str) -> BatchOutcome | None:
    record = _record_find(user=actor, endpoint=ENDPOINT, key=key)
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    batch = Batch.objects.get(pk=record.response_body["id"])
    return BatchOutcome(batch=batch, status=record.response_status, body=record.response_body, replayed=True)


def _system_currencies(items: list[BatchItem]) -> set[str]:
    """Currencies whose system shards the batch may need (read before any lock)."""
    ids = {item.account for item in items if item.type != Transaction.Type.TRANSFER}
    return set(LedgerAccount.objects.filter(pk__in=ids).values_list("currency", flat=True))


def _system_shards_ready(currency: str) -> None:
    try:
        system_shard_pick(currency=currency, role=LedgerAccount.SystemRole.FUNDING)
    except SystemAccountMissing:
        system_accounts_ensure(currency=currency)


def _booking_moment():
    """Now, read under the locks; on PostgreSQL the database clock, as the single movements use."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0]
    return timezone.now()


def _apply(*, actor, items: list[BatchItem], atomic: bool, key: str, fingerprint: str) -> BatchOutcome:
    # Every id any item names, plus one system shard per currency and role.
    known = {
        account.pk: account
        for account in LedgerAccount.objects.filter(
            pk__in={pk for item in items for pk in (item.debited, item.credited) if pk is not None}
        )
    }
    shards = {}
    for item in items:
        if item.type == Transaction.Type.TRANSFER or item.account not in known:
            continue
        role = LedgerAccount.SystemRole.FUNDING if item.type == Transaction.Type.DEPOSIT else LedgerAccount.SystemRole.PAYOUTS
        currency = known[item.account].currency
        if (currency, role) not in shards:
            shards[(currency, role)] = system_shard_pick(currency=currency, role=role)
    try:
        lock = accounts_lock(ids=set(known) | set(shards.values()), share_user=actor)
    except LedgerAccount.DoesNotExist:
        # Customer accounts are never deleted and were just read: a remembered shard id is stale.
        raise SystemAccountMissing(next(iter(shards))[0]) from None
    if lock.user_status != "active":
        raise UserSuspended()
    locked = lock.accounts
    posted_when_locked = {pk: account.posted for pk, account in locked.items()}
    now = _booking_moment()

    batch = Batch(id=uuid7(), owner=actor, atomic=atomic, count=len(items), created_at=now)
    results, applied = [], []  # applied: (item, txn, debit account, credit account)
    for index, item in enumerate(items):
        try:
            debit, credit = _item_check(actor=actor, item=item, locked=locked, shards=shards)
        except LedgerXError as error:
            if atomic:
                raise BatchItemRefused(index=index, error=error) from None
            results.append({"index": index, "status": "failed", "transaction": None, "error": {"code": error.code, "message": error.message}})
            continue
        txn = _item_apply(actor=actor, item=item, batch=batch, debit=debit, credit=credit, now=now)
        applied.append((item, txn, debit, credit))
        results.append({"index": index, "status": "ok", "transaction": txn, "error": None})

    batch.succeeded = len(applied)
    batch.failed = len(items) - len(applied)
    batch.status = Batch.Status.COMMITTED if not batch.failed else (Batch.Status.PARTIAL if applied else Batch.Status.FAILED)
    batch.results = [
        {**result, "transaction": str(result["transaction"].pk) if result["transaction"] else None} for result in results
    ]
    body = batch_representation(batch, {txn.pk: txn for _item, txn, _d, _c in applied})
    _write(actor=actor, batch=batch, applied=applied, posted_when_locked=posted_when_locked, now=now, key=key,
           fingerprint=fingerprint, body=body)
    return BatchOutcome(batch=batch, status=201, body=body, replayed=False)


def _item_check(*, actor, item: BatchItem, locked: dict, shards: dict) -> tuple[LedgerAccount, LedgerAccount]:
    """(debited, credited) locked accounts of ``item``, or the first refusal it meets."""
    debit = locked.get(item.debited) if item.debited else None
    credit = locked.get(item.credited) if item.credited else None
    if item.debited is not None and (debit is None or not debit.is_customer or debit.owner_id != actor.pk):
        raise NotFound()
    if item.credited is not None and (credit is None or not credit.is_customer):
        raise NotFound()
    if item.type == Transaction.Type.DEPOSIT and credit.owner_id != actor.pk and not actor.is_admin:
        raise NotFound()
    if item.type == Transaction.Type.TRANSFER:
        if debit.pk == credit.pk:
            raise SameAccount()
        if debit.currency != credit.currency:
            raise CurrencyMismatch()
    elif item.type == Transaction.Type.DEPOSIT:
        debit = locked[shards[(credit.currency, LedgerAccount.SystemRole.FUNDING)]]
    else:
        credit = locked[shards[(debit.currency, LedgerAccount.SystemRole.PAYOUTS)]]
    for side, account in (("source", debit), ("destination", credit)):
        if account.is_customer and account.is_frozen:
            raise AccountFrozen(f"The {side} account is frozen and can neither send nor receive money.")
    if debit.is_customer and debit.available < item.amount:
        raise InsufficientFunds()
    if credit.is_customer and not item.hold and credit.posted + item.amount > BALANCE_LIMIT:
        raise BalanceLimit()
    return debit, credit


def _item_apply(*, actor, item: BatchItem, batch: Batch, debit: LedgerAccount, credit: LedgerAccount, now) -> Transaction:
    """Change the locked accounts in memory and build the item's transaction (written later, set-based)."""
    hold = item.type == Transaction.Type.TRANSFER and item.hold
    txn = Transaction(
        id=uuid7(),
        type=item.type,
        status=Transaction.Status.PENDING if hold else Transaction.Status.COMMITTED,
        amount=item.amount,
        currency=debit.currency,
        source_account=debit if debit.is_customer else None,
        destination_account=credit if credit.is_customer else None,
        description=item.description,
        metadata=item.metadata or {},
        initiated_by=actor,
        batch=batch,
        created_at=now,
        committed_at=None if hold else now,
    )
    if hold:
        txn.expires_at = now + settings.HOLD_TTL
        debit.pending += item.amount
        debit.version += 1
    else:
        debit.posted -= item.amount
        credit.posted += item.amount
        debit.version += 1
        credit.version += 1
    return txn


def _write(*, actor, batch, applied, posted_when_locked, now, key, fingerprint, body) -> None:
    entries, postings, transactions, audits = [], [], [], []
    changed = {}
    # Each posting's balance_after, replaying the applied items from the balances found under the lock.
    running = dict(posted_when_locked)
    for item, txn, debit, credit in applied:
        changed[debit.pk] = debit
        changed[credit.pk] = credit
        if txn.status == Transaction.Status.COMMITTED:
            entry = JournalEntry(ref_type=txn.type, ref_id=txn.pk, created_at=now)
            entries.append(entry)
            for account, amount in ((debit, -item.amount), (credit, item.amount)):
                running[account.pk] += amount
                postings.append(
                    Posting(entry=entry, account=account, currency=account.currency, amount=amount,
                            balance_after=running[account.pk], created_at=now)
                )
        transactions.append(txn)
    if entries:
        JournalEntry.objects.bulk_create(entries, batch_size=_INSERT_CHUNK)
        for posting in postings:
            posting.entry_id = posting.entry.pk
        Posting.objects.bulk_create(postings, batch_size=_INSERT_CHUNK)
    entry_of = {entry.ref_id: entry for entry in entries}
    for txn in transactions:
        txn.entry = entry_of.get(txn.pk)
        audits.append(
            audit_record_unsaved(
                actor=actor,
                action=AuditAction.HOLD_CREATED if txn.status == Transaction.Status.PENDING else _AUDIT_ACTIONS[txn.type],
                target_type="transaction",
                target_id=txn.pk,
                data={**transaction_representation(txn), "batch": str(batch.pk)},
            )
        )
    changed = list(changed.values())
    _insert(batch)
    _insert(*transactions)
    _insert(*audits)
    _insert(*[AuditPending(record=record) for record in audits])
    _insert(IdempotencyRecord(user=actor, endpoint=ENDPOINT, key=key, fingerprint=fingerprint,
                              response_status=201, response_body=body, transaction=None, created_at=now))
    if changed:
        balances_save(changed)
    # The outbox, in this transaction: each item's transaction.created (both sides see it), then batch.created.
    events_write(
        [
            transaction_event(
                type=EventType.TRANSACTION_CREATED,
                data=transaction_representation(txn),
                accounts=[txn.source_account, txn.destination_account],
            )
            for txn in transactions
        ]
    )
    batch_event_record(data=body, user_id=actor.pk)
    audit_seal_after_commit()
    snapshots = {account.pk: Snapshot.of(account) for account in changed if account.is_customer}
    transaction.on_commit(lambda: balance_cache_store(snapshots))


def _insert(*instances) -> None:
    """Multi-row INSERTs of one model, in chunks."""
    for start in range(0, len(instances), _INSERT_CHUNK):
        sql, params = insert_statement(*instances[start : start + _INSERT_CHUNK])
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
