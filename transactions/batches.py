"""Batches: many movements of one user in one request, under one lock, in one commit.

``batch_create`` applies deposits, withdrawals, transfers (holds too) and
currency conversions in the order given, each seeing the balances the earlier
ones left; ``conversion_run`` is the same engine with one conversion item
(``POST conversions``: no batch row, the transaction as the answer):

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
   (``currency_mismatch``) -> a conversion's quote unused and unexpired
   (``quote_expired``) -> source not frozen -> destination not frozen
   (``account_frozen``) -> funds (``insufficient_funds``) -> the credited
   balance stays within ``BALANCE_LIMIT`` (``balance_limit``). A refused item
   changes nothing in memory, so a non-atomic batch needs no savepoint per
   item; an atomic batch stops at the first refusal and nothing is written.
   A conversion (``fx``) is one entry of four postings, balanced per currency:
   the source account pays its currency's FX pool shard, the destination
   currency's FX pool shard pays the destination account, at the amounts of
   the caller's quote, whose row is locked (``SELECT ... FOR UPDATE``, after
   the accounts) and marked used in the same transaction.
4. The rows of every applied item written set-based: entries, postings
   (each with its account's balance after it), transactions, audit records
   and their sealing queue rows, one balance UPDATE for every account, one
   UPDATE of the quotes used, the batch, its one idempotency record and the
   events. Every item is booked at one moment read under the locks (the
   database clock on PostgreSQL), which is each transaction's
   ``committed_at`` and its postings' ``created_at``:
   ``balance?as_of=<committed_at>`` includes the whole batch.

On PostgreSQL steps 1 (but a PIN that is not proven from the cache) to 4
are ONE call of ``ledgerx_batch_apply`` (``transactions/engine/sql/batches.sql``,
called by named arguments from ``engine.postgres.BATCH_PARAMETERS``), in
autocommit its own transaction: ``_postgres_run``. It builds the stored
response itself, so the first answer and a replay are the same JSON. On
SQLite the same rules run here in Python, in the same order (``_items_run``,
``_rows_write``), and raise the same exceptions; the refusals' messages
come from one table (``engine.codes.ITEM_ERRORS``) on both.

The account cache and the audit sealer run after commit.
"""

import functools
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from accounts.exceptions import UserSuspended
from accounts.services import pin_proven, pin_verify
from audit.models import AuditAction, AuditPending
from audit.services import audit_record_unsaved, audit_seal_after_commit
from events.models import EventType
from events.services import PendingEvent, events_write, pending_event, transaction_event
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
    system_shards_forget,
)
from ledgerx.exceptions import LedgerXError, NotFound, ValidationFailed
from ledgerx.context import current_client_ip, current_request_id
from ledgerx.fastsql import insert_statement, prepared_cursor
from ledgerx.ids import uuid7
from ledgerx.observability import metrics, tracing
from transactions.engine import postgres as engine_call
from transactions.engine.codes import ITEM_ERRORS, refusal, refusal_variant
from transactions.idempotency import (
    MoneyOutcome,
    _in_flight_guard,
    _record_find,
    _replay as _money_replay,
    idempotency_key_validate,
    request_fingerprint,
)
from transactions.exceptions import IdempotencyKeyReused
from transactions.movements import BALANCE_LIMIT_CONSTRAINT
from transactions.models import Batch, IdempotencyRecord, Transaction
from transactions.representations import batch_representation, transaction_representation

MAX_ITEMS = 1000
ENDPOINT = "batches"
CONVERSION_ENDPOINT = "conversions"
_INSERT_CHUNK = 500  # rows per INSERT statement (PostgreSQL takes at most 65535 parameters)

_AUDIT_ACTIONS = {
    Transaction.Type.DEPOSIT: AuditAction.DEPOSIT_CREATED,
    Transaction.Type.WITHDRAWAL: AuditAction.WITHDRAWAL_CREATED,
    Transaction.Type.TRANSFER: AuditAction.TRANSFER_CREATED,
    Transaction.Type.CONVERSION: AuditAction.CONVERSION_CREATED,
}
_FX_POOL = LedgerAccount.SystemRole.FX_POOL


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
        raise ValidationFailed(
            fields={"pin": ["A PIN is required when an item is a withdrawal, a transfer or a conversion."]}
        )
    fingerprint = request_fingerprint(ENDPOINT, {"atomic": atomic, "items": [item.canonical() for item in items]})
    replay = functools.partial(_replay, actor, idempotency_key, fingerprint)
    if connection.vendor == "postgresql":
        return _postgres_run(
            actor=actor, endpoint=ENDPOINT, key=idempotency_key, fingerprint=fingerprint, items=items, atomic=atomic,
            batch=True, pin=pin if needs_pin else None, replay=replay,
        )

    def apply(currencies):
        try:
            run = _items_run(actor=actor, items=items, atomic=atomic, currencies=currencies)
        except _Refused as refused:
            raise BatchItemRefused(index=refused.index, error=refused.error) from None
        return _batch_write(actor=actor, run=run, atomic=atomic, count=len(items), key=idempotency_key,
                            fingerprint=fingerprint)

    return _engine_run(
        actor=actor, endpoint=ENDPOINT, key=idempotency_key, items=items, pin=pin if needs_pin else None,
        apply=apply, replay=replay,
    )


def conversion_run(*, actor, item: BatchItem, pin: str, idempotency_key: str, fingerprint: str) -> MoneyOutcome:
    """The engine with one conversion item (``POST conversions``): the same locks, checks and writes as a batch's.

    No batch row: the answer is the conversion's transaction, bound to the key
    of the ``conversions`` endpoint. Raises what ``batch_create`` raises, the
    refusal as itself (no ``index``).
    """
    idempotency_key_validate(idempotency_key)

    def replay():
        record = _record_find(user=actor, endpoint=CONVERSION_ENDPOINT, key=idempotency_key)
        return None if record is None else _money_replay(record, fingerprint)

    if connection.vendor == "postgresql":
        return _postgres_run(
            actor=actor, endpoint=CONVERSION_ENDPOINT, key=idempotency_key, fingerprint=fingerprint, items=[item],
            atomic=True, batch=False, pin=pin, replay=replay,
        )

    def apply(currencies):
        try:
            run = _items_run(actor=actor, items=[item], atomic=True, currencies=currencies)
        except _Refused as refused:
            raise refused.error from None
        return _single_write(actor=actor, run=run, key=idempotency_key, fingerprint=fingerprint)

    return _engine_run(
        actor=actor, endpoint=CONVERSION_ENDPOINT, key=idempotency_key, items=[item], pin=pin, apply=apply, replay=replay
    )


def _engine_run(*, actor, endpoint: str, key: str, items: list[BatchItem], pin: str | None, apply, replay):
    """SQLite: the request-level steps around ``apply`` (one durable transaction), in the order singles follow.

    The key (a bound key replays through ``replay``), the in-flight guard, the
    PIN once (``pin`` None: no item debits), the system shards made sure of;
    a key bound meanwhile by a duplicate that won replays too.
    """
    guard = _in_flight_guard(actor, endpoint, key)
    try:
        if guard.claim_and_probe(user=actor, endpoint=endpoint, key=key):
            replayed = replay()
            if replayed is not None:
                return replayed
        if pin is not None:
            pin_verify(user=actor, pin=pin)
        currencies = _currencies_of(items)
        for currency, roles in _system_needs(items, currencies).items():
            _system_shards_ready(currency, roles)
        try:
            for attempt in (1, 2):
                try:
                    with transaction.atomic(durable=True):
                        return apply(currencies)
                except SystemAccountMissing as missing:
                    # The shard ids this process remembered are gone (a test database flushed
                    # under it): forget them, make sure the shards exist, try once more.
                    if attempt == 2:
                        raise
                    system_shards_forget()
                    system_accounts_ensure(currency=missing.args[0])
        except IntegrityError:
            # The key was bound meanwhile by a duplicate that won: ours rolled back.
            replayed = replay()
            if replayed is None:
                raise
            return replayed
    finally:
        guard.release()


# --- PostgreSQL: ONE call of ledgerx_batch_apply (transactions/engine/sql/batches.sql) ----------

_CONVERSION_FIELDS = ("source_amount", "destination_amount", "destination_currency", "quote")


def _postgres_run(
    *, actor, endpoint: str, key: str, fingerprint: str, items: list[BatchItem], atomic: bool, batch: bool,
    pin: str | None, replay,
):
    """The request on PostgreSQL: the PIN as singles check it, then one call of the function (its own transaction).

    A PIN proven from the cache (``pin_proven``) needs no step of its own: the
    function claims the key first. Otherwise the key is claimed and probed
    (a bound key replays without bcrypt), then ``pin_verify``. The function
    refuses in ``engine.codes`` order; its refusals become the same
    exceptions the SQLite path raises.
    """
    guard = _in_flight_guard(actor, endpoint, key)
    try:
        if pin is not None and not pin_proven(user=actor, pin=pin):
            if guard.claim_and_probe(user=actor, endpoint=endpoint, key=key):
                replayed = replay()
                if replayed is not None:
                    return replayed
            pin_verify(user=actor, pin=pin)
        else:
            guard.claim()
        for attempt in (1, 2):
            try:
                row = _postgres_call(actor=actor, endpoint=endpoint, key=key, fingerprint=fingerprint, items=items,
                                     atomic=atomic, batch=batch, guard=guard)
            except _KeyBound:
                replayed = replay()
                if replayed is None:
                    raise AssertionError("the key was bound, yet its record is gone") from None
                return replayed
            except SystemAccountMissing as missing:
                # A needed shard is missing (a currency's first use) or its id is stale (a test
                # database flushed under this process): make sure of them, try once more.
                if attempt == 2:
                    raise
                system_shards_forget()
                _no_shards.clear()
                system_accounts_ensure(currency=missing.args[0])
                continue
            except IntegrityError:
                # The key was bound meanwhile by a duplicate that won: ours rolled back.
                replayed = replay()
                if replayed is None:
                    raise
                return replayed
            guard.written()
            return _postgres_outcome(actor=actor, row=row, atomic=atomic, batch=batch)
        raise AssertionError("unreachable")
    finally:
        guard.release()


class _KeyBound(Exception):
    """Internal: the function found the key bound (replay it)."""


# (currency, role) found without shards: not asked again (a query each time) until an item needs one.
_no_shards: set = set()


def _shard_candidates(items: list[BatchItem]) -> list:
    """One shard id per configured currency for each system role the items may need (no query once known).

    A currency without shards yet is left out; if an item needs it, the
    function answers system_missing and ``_postgres_run`` creates them.
    """
    roles = {_system_role(item) for item in items} - {""}
    shards = []
    for role in sorted(roles):
        for currency in settings.CURRENCIES:
            if (currency, role) in _no_shards:
                continue
            try:
                shards.append(system_shard_pick(currency=currency, role=role))
            except SystemAccountMissing:
                _no_shards.add((currency, role))
    return shards


def _postgres_call(*, actor, endpoint, key, fingerprint, items, atomic, batch, guard) -> tuple:
    txn_ids = [uuid7() for _item in items]
    audit_ids = [uuid7() for _item in items]
    event_ids = [uuid7() for _item in items]
    call = engine_call.BatchCall(
        actor=actor, endpoint=endpoint, key=key, fingerprint=fingerprint, batch_id=uuid7() if batch else None,
        atomic=atomic, items=items, txn_ids=txn_ids, audit_ids=audit_ids, event_ids=event_ids,
        batch_event_id=uuid7() if batch else None, shards=_shard_candidates(items), hold_ttl=settings.HOLD_TTL,
        audit_actions=_AUDIT_ACTION_NAMES, errors=ITEM_ERRORS, audit_ip=_audit_context.ip,
        audit_request_id=_audit_context.request_id, lock_key=guard.lock_key, unlock_session=guard.session_locked,
    )
    params = engine_call.batch_call_params(call)
    try:
        with tracing.span("ledgerx.batch", **{"ledgerx.items": len(items)}):
            sent_ns = tracing.now_ns()
            if connection.in_atomic_block:  # tests: inside the test's transaction
                with transaction.atomic(durable=True), prepared_cursor() as cursor:
                    cursor.execute(engine_call.BATCH_CALL_SQL, params)
                    row = cursor.fetchone()
            else:  # autocommit: the one statement is the transaction
                with prepared_cursor() as cursor:
                    cursor.execute(engine_call.BATCH_CALL_SQL, params)
                    row = cursor.fetchone()
            tracing.span_measured("ledgerx.movement.lock_wait", start_ns=sent_ns, duration_ns=row[3] * 1000)
    except DatabaseError as exc:
        _raise_refusal(exc, batch=batch)
        raise
    return row


def _raise_refusal(exc: DatabaseError, *, batch: bool) -> None:
    """The function's refusals (SQLSTATE LX000: the code as message; an item's index as detail, its message as hint)."""
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "23514" and cause.diag.constraint_name == BALANCE_LIMIT_CONSTRAINT:
        raise BalanceLimit() from None
    if getattr(cause, "sqlstate", None) != "LX000":
        return
    code, detail, hint = cause.diag.message_primary, cause.diag.message_detail, cause.diag.message_hint
    if code == "key_bound":
        raise _KeyBound() from None
    if code == "system_missing":
        raise SystemAccountMissing(detail) from None
    try:
        error = refusal(code)
    except KeyError:
        raise AssertionError(f"unknown refusal from {engine_call.BATCH_FUNCTION}: {code!r}") from exc
    if detail is None:  # a request-level refusal
        raise error from None
    if hint:
        error.message = hint
        error.args = (hint,)
    if batch:
        raise BatchItemRefused(index=int(detail), error=error) from None
    raise error from None


def _postgres_outcome(*, actor, row: tuple, atomic: bool, batch: bool):
    body, changed, booked, _lock_wait_us = row
    body = json.loads(body) if isinstance(body, str) else body
    changed = json.loads(changed) if isinstance(changed, str) else changed
    snapshots = {uuid.UUID(pk): Snapshot(*state) for pk, *state in changed}
    if batch:
        made = [result["transaction"] for result in body["results"] if result["transaction"] is not None]
        events = [PendingEvent(type=EventType.TRANSACTION_CREATED, data=data, user_ids=()) for data in made]
        events.append(PendingEvent(type=EventType.BATCH_CREATED, data=body, user_ids=()))
    else:
        made = [body]
        events = [PendingEvent(type=EventType.TRANSACTION_CREATED, data=body, user_ids=())]
    if made:
        audit_seal_after_commit()
    transaction.on_commit(functools.partial(metrics.events_committed, events))
    transaction.on_commit(lambda: balance_cache_store(snapshots))
    if not batch:
        return MoneyOutcome(transaction=_transaction_of(actor, body, booked), status=201, body=body, replayed=False)
    outcome = Batch(
        id=uuid.UUID(body["id"]), owner=actor, atomic=atomic, status=body["status"], count=body["count"],
        succeeded=body["succeeded"], failed=body["failed"], created_at=booked,
        results=[{**result, "transaction": result["transaction"]["id"] if result["transaction"] else None}
                 for result in body["results"]],
    )
    outcome._state.adding, outcome._state.db = False, connection.alias
    return BatchOutcome(batch=outcome, status=201, body=body, replayed=False)


def _transaction_of(actor, body: dict, booked) -> Transaction:
    """The written transaction as a model instance, from its representation (no query)."""
    txn = Transaction(
        id=uuid.UUID(body["id"]), type=body["type"], status=body["status"], amount=body["amount"],
        currency=body["currency"], description=body["description"], metadata=body["metadata"],
        source_account_id=body["source_account"] and uuid.UUID(body["source_account"]),
        destination_account_id=body["destination_account"] and uuid.UUID(body["destination_account"]),
        initiated_by=actor, created_at=booked, committed_at=booked if body["committed_at"] else None,
        **{name: body[name] for name in _CONVERSION_FIELDS[:3] if name in body},
    )
    if "quote" in body:
        txn.quote_id = uuid.UUID(body["quote"])
        txn.rate = Decimal(body["rate"])
    txn._state.adding, txn._state.db = False, connection.alias
    return txn


class _AuditContext:
    """The request's client IP and id, as ``audit_record_unsaved`` records them."""

    @property
    def ip(self):
        ip = current_client_ip()
        return ip if ip not in (None, "unknown") else None

    @property
    def request_id(self) -> str:
        return current_request_id() or ""


_audit_context = _AuditContext()
_AUDIT_ACTION_NAMES = {**{str(kind): str(action) for kind, action in _AUDIT_ACTIONS.items()}, "hold": str(AuditAction.HOLD_CREATED)}


def _replay(actor, key: str, fingerprint: str) -> BatchOutcome | None:
    record = _record_find(user=actor, endpoint=ENDPOINT, key=key)
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    batch = Batch.objects.get(pk=record.response_body["id"])
    return BatchOutcome(batch=batch, status=record.response_status, body=record.response_body, replayed=True)


def _system_role(item: BatchItem) -> str:
    """The system account on the house's side of ``item`` (a transfer has none)."""
    return {
        Transaction.Type.DEPOSIT: LedgerAccount.SystemRole.FUNDING,
        Transaction.Type.WITHDRAWAL: LedgerAccount.SystemRole.PAYOUTS,
        Transaction.Type.CONVERSION: _FX_POOL,
    }.get(item.type, "")


def _currencies_of(items: list[BatchItem]) -> dict:
    """{account id: currency} of every account the items name that exists (read before any lock).

    An account's currency never changes and accounts are never deleted, so
    this read outside the transaction stays true under the locks; an id not
    found here is not locked and its item is refused as ``not_found``.
    """
    ids = {pk for item in items for pk in (item.debited, item.credited) if pk is not None}
    return dict(LedgerAccount.objects.filter(pk__in=ids).values_list("pk", "currency"))


def _system_needs(items: list[BatchItem], currencies: dict) -> dict[str, set]:
    """{currency: system roles} the batch may need shards of."""
    needs: dict[str, set] = {}
    for item in items:
        role = _system_role(item)
        if role:
            for pk in (item.account, item.source_account, item.destination_account):
                if pk in currencies:
                    needs.setdefault(currencies[pk], set()).add(role)
    return needs


def _system_shards_ready(currency: str, roles) -> None:
    try:
        for role in sorted(roles):
            system_shard_pick(currency=currency, role=role)
    except SystemAccountMissing:
        system_accounts_ensure(currency=currency)


def _booking_moment():
    """Now, read under the locks (SQLite: the database's write lock is held)."""
    return timezone.now()


class _Refused(Exception):
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


def _items_run(*, actor, items: list[BatchItem], atomic: bool, currencies: dict) -> _Run:
    """Lock everything the items touch, then check and apply each in memory (nothing written yet).

    ``currencies``: ``_currencies_of(items)``, every named account that exists.
    """
    # Every id any item names, plus one system shard per currency and role.
    shards = {}
    for item in items:
        role = _system_role(item)
        if not role:
            continue
        for pk in (item.account,) if role != _FX_POOL else (item.source_account, item.destination_account):
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
                raise _Refused(index, error) from None
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
    source_pool = locked[shards[(source.currency, _FX_POOL)]]
    destination_pool = locked[shards[(destination.currency, _FX_POOL)]]
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


def _batch_write(*, actor, run: _Run, atomic: bool, count: int, key: str, fingerprint: str) -> BatchOutcome:
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


def _single_write(*, actor, run: _Run, key: str, fingerprint: str) -> MoneyOutcome:
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
                action=AuditAction.HOLD_CREATED if txn.status == Transaction.Status.PENDING else _AUDIT_ACTIONS[txn.type],
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
