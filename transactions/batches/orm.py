"""The batch engine's rules in Python, for SQLite: the same order as ``sql/batches.sql``, the same exceptions.

Called by ``transactions.batches`` inside its durable transaction: every
account the items name (and one system shard per currency and role) locked
by one ``accounts_lock`` in primary-key order, the quotes after them, each
item checked and applied in memory (``items_run``), then the applied items'
rows written set-based (``batch_write`` / ``single_write``).
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.exceptions import UserSuspended
from audit.models import AuditAction, AuditPending
from audit.services import audit_record_unsaved, audit_seal_after_commit
from events.models import EventType
from events.services import events_write, pending_event, transaction_event
from fx.exceptions import QuoteExpired
from fx.models import FxQuote
from ledger.balance_cache import Snapshot, balance_cache_store
from ledger.exceptions import BALANCE_LIMIT, BalanceLimit, CurrencyMismatch, InsufficientFunds, SameAccount
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.services import (
    SystemAccountMissing,
    accounts_lock,
    balances_save,
    system_accounts_ensure,
    system_shard_pick,
)
from ledgerx.exceptions import LedgerXError, NotFound
from ledgerx.fastsql import insert_statement
from ledgerx.ids import uuid7
from transactions.batches.items import (
    AUDIT_ACTIONS,
    ENDPOINT,
    CONVERSION_ENDPOINT,
    FX_POOL,
    BatchItem,
    BatchOutcome,
    system_role,
)
from transactions.engine.codes import refusal, refusal_variant
from transactions.idempotency import MoneyOutcome
from transactions.models import Batch, IdempotencyRecord, Transaction
from transactions.representations import batch_representation, transaction_representation

_INSERT_CHUNK = 500  # rows per INSERT statement


def currencies_of(items: list[BatchItem]) -> dict:
    """{account id: currency} of every account the items name that exists (read before any lock).

    An account's currency never changes and accounts are never deleted, so
    this read outside the transaction stays true under the locks; an id not
    found here is not locked and its item is refused as ``not_found``.
    """
    ids = {pk for item in items for pk in (item.debited, item.credited) if pk is not None}
    return dict(LedgerAccount.objects.filter(pk__in=ids).values_list("pk", "currency"))


def system_needs(items: list[BatchItem], currencies: dict) -> dict[str, set]:
    """{currency: system roles} the batch may need shards of."""
    needs: dict[str, set] = {}
    for item in items:
        role = system_role(item)
        if role:
            for pk in (item.account, item.source_account, item.destination_account):
                if pk in currencies:
                    needs.setdefault(currencies[pk], set()).add(role)
    return needs


def system_shards_ready(currency: str, roles) -> None:
    try:
        for role in sorted(roles):
            system_shard_pick(currency=currency, role=role)
    except SystemAccountMissing:
        system_accounts_ensure(currency=currency)


def _booking_moment():
    """Now, read under the locks (SQLite: the database's write lock is held)."""
    return timezone.now()


class Refused(Exception):
    """Internal: an atomic run's first refused item."""

    def __init__(self, index: int, error: LedgerXError):
        self.index, self.error = index, error


@dataclass
class _Applied:
    item: BatchItem
    txn: Transaction
    lines: list  # the entry's (account, signed amount); empty for a hold
    touched: list  # every locked account the item changed


@dataclass
class _Run:
    now: object
    results: list
    applied: list  # of _Applied
    posted_when_locked: dict
    quotes_used: list


def items_run(*, actor, items: list[BatchItem], atomic: bool, currencies: dict) -> _Run:
    """Lock everything the items touch, then check and apply each in memory (nothing written yet).

    ``currencies``: ``currencies_of(items)``, every named account that exists.
    """
    # Every id any item names, plus one system shard per currency and role.
    shards = {}
    for item in items:
        role = system_role(item)
        if not role:
            continue
        for pk in (item.account,) if role != FX_POOL else (item.source_account, item.destination_account):
            if pk in currencies and (currencies[pk], role) not in shards:
                shards[(currencies[pk], role)] = system_shard_pick(currency=currencies[pk], role=role)
    try:
        lock = accounts_lock(ids=set(currencies) | set(shards.values()), share_user=actor)
    except LedgerAccount.DoesNotExist:
        # Customer accounts are never deleted and were just read: a remembered shard id is stale.
        raise SystemAccountMissing(next(iter(shards))[0]) from None
    if lock.user_status != "active":
        raise UserSuspended()
    locked = lock.accounts
    quote_ids = {item.quote for item in items if item.type == Transaction.Type.CONVERSION}
    # The quotes after the accounts, in primary-key order: every conversion takes its locks in this order.
    quotes = {quote.pk: quote for quote in FxQuote.objects.select_for_update().filter(pk__in=quote_ids).order_by("pk")} if quote_ids else {}
    posted_when_locked = {pk: account.posted for pk, account in locked.items()}
    now = _booking_moment()

    run = _Run(now=now, results=[], applied=[], posted_when_locked=posted_when_locked, quotes_used=[])
    for index, item in enumerate(items):
        try:
            if item.type == Transaction.Type.CONVERSION:
                lines, quote = _conversion_check(actor=actor, item=item, locked=locked, shards=shards, quotes=quotes, now=now)
                applied = _conversion_apply(actor=actor, item=item, lines=lines, quote=quote, now=now)
                run.quotes_used.append(quote)
            else:
                debit, credit = _item_check(actor=actor, item=item, locked=locked, shards=shards)
                applied = _item_apply(actor=actor, item=item, debit=debit, credit=credit, now=now)
        except LedgerXError as error:
            if atomic:
                raise Refused(index, error) from None
            run.results.append({"index": index, "status": "failed", "transaction": None, "error": {"code": error.code, "message": error.message}})
            continue
        run.applied.append(applied)
        run.results.append({"index": index, "status": "ok", "transaction": applied.txn, "error": None})
    return run


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
            raise refusal(f"account_frozen:{side}")
    if debit.is_customer and debit.available < item.amount:
        raise InsufficientFunds()
    if credit.is_customer and not item.hold and credit.posted + item.amount > BALANCE_LIMIT:
        raise BalanceLimit()
    return debit, credit


def _conversion_check(*, actor, item: BatchItem, locked: dict, shards: dict, quotes: dict, now) -> tuple[list, FxQuote]:
    """The entry's four lines of a conversion item and its quote, or the first refusal it meets.

    Both accounts must be the caller's, and so must the quote; an item that
    is refused changes nothing (a quote used by an earlier item of the same
    batch is marked in memory only once that item was applied).
    """
    source = locked.get(item.source_account)
    destination = locked.get(item.destination_account)
    quote = quotes.get(item.quote)
    for account in (source, destination):
        if account is None or not account.is_customer or account.owner_id != actor.pk:
            raise NotFound()
    if quote is None or quote.user_id != actor.pk:
        raise refusal_variant("not_found:quote")
    if source.pk == destination.pk:
        raise SameAccount()
    if source.currency != quote.source_currency or destination.currency != quote.destination_currency:
        raise refusal_variant(
            "currency_mismatch:quote", quote.source_currency, quote.destination_currency, source.currency,
            destination.currency,
        )
    if quote.used_at is not None:
        raise refusal_variant("quote_expired:used")
    if quote.expires_at <= now:
        raise QuoteExpired()
    for side, account in (("source", source), ("destination", destination)):
        if account.is_frozen:
            raise refusal(f"account_frozen:{side}")
    if source.available < quote.source_amount:
        raise InsufficientFunds()
    if destination.posted + quote.destination_amount > BALANCE_LIMIT:
        raise BalanceLimit()
    source_pool = locked[shards[(source.currency, FX_POOL)]]
    destination_pool = locked[shards[(destination.currency, FX_POOL)]]
    lines = [
        (source, -quote.source_amount),
        (source_pool, quote.source_amount),
        (destination_pool, -quote.destination_amount),
        (destination, quote.destination_amount),
    ]
    return lines, quote


def _lines_apply(lines: list) -> list:
    """Add ``lines`` to the locked accounts' posted balances in memory; the accounts changed, each once."""
    touched = {}
    for account, amount in lines:
        account.posted += amount
        touched[account.pk] = account
    for account in touched.values():
        account.version += 1
    return list(touched.values())


def _item_apply(*, actor, item: BatchItem, debit: LedgerAccount, credit: LedgerAccount, now) -> _Applied:
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
        created_at=now,
        committed_at=None if hold else now,
    )
    if hold:
        txn.expires_at = now + settings.HOLD_TTL
        debit.pending += item.amount
        debit.version += 1
        return _Applied(item=item, txn=txn, lines=[], touched=[debit])
    lines = [(debit, -item.amount), (credit, item.amount)]
    return _Applied(item=item, txn=txn, lines=lines, touched=_lines_apply(lines))


def _conversion_apply(*, actor, item: BatchItem, lines: list, quote: FxQuote, now) -> _Applied:
    source, destination = lines[0][0], lines[-1][0]
    txn = Transaction(
        id=uuid7(),
        type=Transaction.Type.CONVERSION,
        status=Transaction.Status.COMMITTED,
        amount=quote.source_amount,
        currency=quote.source_currency,
        source_account=source,
        destination_account=destination,
        description=item.description,
        metadata=item.metadata or {},
        initiated_by=actor,
        created_at=now,
        committed_at=now,
        source_amount=quote.source_amount,
        destination_amount=quote.destination_amount,
        destination_currency=quote.destination_currency,
        rate=quote.rate,
        quote=quote,
    )
    quote.used_at = now
    return _Applied(item=item, txn=txn, lines=lines, touched=_lines_apply(lines))


def batch_write(*, actor, run: _Run, atomic: bool, count: int, key: str, fingerprint: str) -> BatchOutcome:
    batch = Batch(id=uuid7(), owner=actor, atomic=atomic, count=count, created_at=run.now)
    for applied in run.applied:
        applied.txn.batch = batch
    batch.succeeded = len(run.applied)
    batch.failed = count - len(run.applied)
    batch.status = Batch.Status.COMMITTED if not batch.failed else (Batch.Status.PARTIAL if run.applied else Batch.Status.FAILED)
    batch.results = [
        {**result, "transaction": str(result["transaction"].pk) if result["transaction"] else None} for result in run.results
    ]
    body = batch_representation(batch, {applied.txn.pk: applied.txn for applied in run.applied})
    _rows_write(
        actor=actor,
        run=run,
        audit_extra={"batch": str(batch.pk)},
        first=[batch],
        last=[IdempotencyRecord(user=actor, endpoint=ENDPOINT, key=key, fingerprint=fingerprint,
                                response_status=201, response_body=body, transaction=None, created_at=run.now)],
        # The caller sees batch.created after its items' transaction.created events.
        events=[pending_event(type=EventType.BATCH_CREATED, data=body, user_ids=[actor.pk])],
    )
    return BatchOutcome(batch=batch, status=201, body=body, replayed=False)


def single_write(*, actor, run: _Run, key: str, fingerprint: str) -> MoneyOutcome:
    (applied,) = run.applied
    txn = applied.txn
    body = transaction_representation(txn)
    record = IdempotencyRecord(user=actor, endpoint=CONVERSION_ENDPOINT, key=key, fingerprint=fingerprint,
                               response_status=201, response_body=body, transaction=txn, created_at=run.now)
    _rows_write(actor=actor, run=run, audit_extra={}, first=[], last=[record], events=[])
    return MoneyOutcome(transaction=txn, status=201, body=body, replayed=False)


def _rows_write(*, actor, run: _Run, audit_extra: dict, first: list, last: list, events: list) -> None:
    """The applied items' rows, set-based: entries, postings, transactions, audit, balances, quotes, events.

    ``first`` rows go in before the transactions (the batch they point to),
    ``last`` after them (the idempotency record), ``events`` after the items'
    own. The entries are one INSERT (their ids are needed); on PostgreSQL
    everything else is ONE statement of data-modifying CTEs (``_statements_run``).
    """
    now = run.now
    entries, postings, transactions, audits = [], [], [], []
    changed = {}
    # Each posting's balance_after, replaying the applied items from the balances found under the lock.
    running = dict(run.posted_when_locked)
    for applied in run.applied:
        txn = applied.txn
        for account in applied.touched:
            changed[account.pk] = account
        if applied.lines:
            entry = JournalEntry(ref_type=txn.type, ref_id=txn.pk, created_at=now)
            entries.append(entry)
            for account, amount in applied.lines:
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
    entry_of = {entry.ref_id: entry for entry in entries}
    for txn in transactions:
        txn.entry = entry_of.get(txn.pk)
        audits.append(
            audit_record_unsaved(
                actor=actor,
                action=AuditAction.HOLD_CREATED if txn.status == Transaction.Status.PENDING else AUDIT_ACTIONS[txn.type],
                target_type="transaction",
                target_id=txn.pk,
                data={**transaction_representation(txn), **audit_extra},
            )
        )
    changed = list(changed.values())
    # The outbox, in this transaction: each item's transaction.created (both sides see it), then ``events``.
    outbox = [
        transaction_event(
            type=EventType.TRANSACTION_CREATED,
            data=transaction_representation(txn),
            accounts=[txn.source_account, txn.destination_account],
        )
        for txn in transactions
    ] + events
    _statements_run(
        groups=[first, postings, transactions, audits, [AuditPending(record=record) for record in audits], last],
        accounts=changed,
        quotes=run.quotes_used,
        used_at=now,
        events=outbox,
    )
    audit_seal_after_commit()
    snapshots = {account.pk: Snapshot.of(account) for account in changed if account.is_customer}
    transaction.on_commit(lambda: balance_cache_store(snapshots))


def _statements_run(*, groups: list[list], accounts: list, quotes: list, used_at, events: list) -> None:
    """SQLite: write ``groups`` (lists of rows of one model, in order), the balances, the quotes' use and the events."""
    statements = [
        insert_statement(*group[start : start + _INSERT_CHUNK])
        for group in groups
        for start in range(0, len(group), _INSERT_CHUNK)
    ]
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
    if accounts:
        balances_save(accounts)
    if quotes:
        FxQuote.objects.filter(pk__in=[quote.pk for quote in quotes]).update(used_at=used_at)
    events_write(events)
