"""Writing a new money movement: one SQL function call on PostgreSQL, the ORM elsewhere.

A ``Movement`` is a new deposit, withdrawal, transfer or hold, decided
completely before any query: the unsaved transaction row (id, timestamps,
sides, amount), the system role on the other side of a deposit or withdrawal,
and the unsaved audit record. ``movement_write`` writes it together with its
idempotency record; the changed customer accounts' state goes to the account
cache after commit.

* On PostgreSQL: ONE call of ``ledgerx_movement_create`` (its only text is
  ``transactions/engine/sql/movements.sql``) claims the key, locks, checks and
  writes everything in one statement, so a movement is one round trip and
  holds its row locks only for the function's own writes and the commit: a
  hot account (a merchant's, a system shard) is locked for as short as can be.
* Elsewhere (SQLite): the same steps through ``ledger.services``
  (``accounts_lock``, ``entry_post``/``holds_adjust``) and ``rows_insert``.

Both apply the same rules under the lock, in the same order -- the actor is
active, the accounts exist and are of the movement's currency, neither side
is frozen, the source has the money -- and raise the same exceptions; the
test suite runs against both databases. The rules' Python home is the
``_check_*`` functions below; their SQL twin is the function's body.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.exceptions import UserSuspended
from audit.models import AuditRecord
from audit.services import audit_rows_queued, audit_seal_after_commit
from events.services import PendingEvent, events_statement_ctes, events_write
from ledger.balance_cache import Snapshot, balance_cache_store
from ledger.exceptions import BalanceLimit, InsufficientFunds
from ledger.models import LedgerAccount
from ledger.services import (
    LockResult,
    SystemAccountMissing,
    accounts_lock,
    entry_post,
    holds_adjust,
    system_shard_pick,
    system_shards_forget,
)
from ledgerx.fastsql import prepared_cursor, rows_insert
from ledgerx.observability import metrics, tracing
from transactions.engine.codes import refusal
from transactions.engine import postgres as engine_call
from transactions.models import IdempotencyRecord, Transaction
from transactions.representations import timestamp

# Test seam: called with the locked accounts while a movement written through
# the ORM (SQLite; holds and reversals everywhere) holds its locks; the
# fault-injection tests pause or kill the connection here. Always None in
# production code paths.
after_lock_hook: Callable[[dict], None] | None = None


# The check constraint (ledger/0004) that refuses a customer balance past ledger.exceptions.BALANCE_LIMIT;
# the PostgreSQL function meets it when it updates the balance.
BALANCE_LIMIT_CONSTRAINT = "ledger_account_customer_balance_limit"


class KeyBound(Exception):
    """Internal: the idempotency key was already bound when the movement tried to claim it."""


@dataclass
class Movement:
    actor: object  # accounts.User
    txn: Transaction  # unsaved, every field set
    body: dict  # its representation: the 201 response, stored for replays
    system_role: str  # LedgerAccount.SystemRole for deposits/withdrawals, "" for transfers
    audit: AuditRecord  # unsaved
    events: tuple[PendingEvent, ...] = ()  # its events (events.services), written with it


# --- The rules under the lock (Python home; the SQL function mirrors them) ------------


def check_actor_active(lock: LockResult) -> None:
    if lock.user_status != "active":
        raise UserSuspended()


def check_can_move(account: LedgerAccount, side: str) -> None:
    if account.is_frozen:
        raise _frozen(side)


def _frozen(side: str):
    return refusal(f"account_frozen:{side}")


def after_lock(locked: dict) -> None:
    if after_lock_hook is not None:
        after_lock_hook(locked)


# --- Writing ------------------------------------------------------------------------


def movement_write(
    movement: Movement, record: IdempotencyRecord, *, lock_key: int | None = None, unlock_session: bool = False
) -> None:
    """Write ``movement`` and its idempotency ``record``; the balance cache is refreshed after commit.

    PostgreSQL only: ``lock_key`` is the key's in-flight advisory lock
    (``transactions.idempotency``), try-locked for the movement's transaction
    (refused: IdempotencyInProgress); with ``unlock_session`` the caller holds
    it at session level and the movement releases it once written.

    Must be called outside any transaction (it is its own durable
    transaction) -- or, in tests, inside the test's. Raises KeyBound (the key
    was bound meanwhile: replay it), SystemAccountMissing (create the shards
    and retry), and the business errors of the rules above (nothing written).
    """
    # The system shard on the other side of a deposit or withdrawal, chosen at
    # random so concurrent movements spread over the shards.
    system = None
    if movement.system_role:
        system = system_shard_pick(currency=movement.txn.currency, role=movement.system_role)
    if connection.vendor == "postgresql":
        if connection.in_atomic_block:
            with transaction.atomic(durable=True):
                _write_postgres(movement, record, system, lock_key, unlock_session)
        else:  # autocommit: the one statement is the transaction
            _write_postgres(movement, record, system, lock_key, unlock_session)
        return
    with transaction.atomic(durable=True):
        _write_orm(movement, record, system)


def _write_orm(movement: Movement, record: IdempotencyRecord, system_id) -> None:
    txn, actor, amount = movement.txn, movement.actor, movement.txn.amount
    ids = [pk for pk in (txn.source_account_id, txn.destination_account_id, system_id) if pk is not None]
    try:
        lock = accounts_lock(ids=ids, share_user=actor)
    except LedgerAccount.DoesNotExist:
        if system_id is None or LedgerAccount.objects.filter(pk=system_id).exists():
            raise
        system_shards_forget()  # the remembered shard ids are stale (a test database flushed)
        raise SystemAccountMissing(txn.currency) from None
    check_actor_active(lock)
    locked = lock.accounts
    source = locked.get(txn.source_account_id)
    destination = locked.get(txn.destination_account_id)
    after_lock(locked)
    if source is not None:
        check_can_move(source, "source")
    if destination is not None:
        check_can_move(destination, "destination")
    if source is not None and source.available < amount:
        raise InsufficientFunds()
    if txn.status == Transaction.Status.PENDING:
        holds_adjust(deltas={source: amount})
    else:
        debit = source or locked[system_id]
        credit = destination or locked[system_id]
        # The booking moment, under the lock: the postings' created_at and the transaction's committed_at.
        booked = timezone.now()
        txn.entry = entry_post(ref_type=txn.type, ref_id=txn.pk, lines=[(debit, -amount), (credit, amount)], now=booked)
        txn.committed_at = booked
        movement.body["committed_at"] = timestamp(booked)  # the stored response and the event carry it too
        movement.audit.data["committed_at"] = timestamp(booked)
    audit_rows = audit_rows_queued(movement.audit)
    # The transaction row, its key and its audit rows in one statement.
    rows_insert(txn, record, *audit_rows)
    events_write(movement.events)


# The function's result columns (sql/movements.sql): entry_id, account_id, posted, pending,
# version, status, name (the account's state for the cache), booked_at, committed, lock_wait_us.
_ACCOUNT, _BOOKED_AT, _LOCK_WAIT_US = 1, 7, 9
# A movement's events say when it was booked, as its stored response does: the moment the
# function takes under its locks, read from the call's own result in the same statement.
_EVENT_DATA_BOOKED = "jsonb_set(%s::jsonb, '{committed_at}', COALESCE((SELECT m.committed FROM m LIMIT 1), 'null'::jsonb))"


def _write_postgres(
    movement: Movement, record: IdempotencyRecord, system, lock_key: int | None, unlock_session: bool
) -> None:
    txn = movement.txn
    params = engine_call.call_params(engine_call.Call(movement, record, system, lock_key, unlock_session))
    try:
        # The events ride in the same statement (data-modifying CTEs after the call's).
        ctes, event_params, _events = events_statement_ctes(movement.events, data_sql=_EVENT_DATA_BOOKED)
        events_sql = "".join(f", {name} AS ({text})" for name, text in ctes)
        call_sql = engine_call.CALL_SQL
        sql = f"WITH m AS ({call_sql}){events_sql} SELECT * FROM m" if ctes else call_sql
        with tracing.span("ledgerx.movement", **{"ledgerx.type": txn.type, "ledgerx.currency": txn.currency}):
            sent_ns = tracing.now_ns()
            with prepared_cursor() as cursor:
                cursor.execute(sql, params + event_params)
                rows = cursor.fetchall()
            if rows:
                # The lock is taken inside the call: its span has the duration the function measured.
                tracing.span_measured("ledgerx.movement.lock_wait", start_ns=sent_ns, duration_ns=rows[0][_LOCK_WAIT_US] * 1000)
    except DatabaseError as exc:
        _raise_refusal(exc, movement)
        raise
    # Written (in autocommit: committed): count it once its transaction commits.
    transaction.on_commit(functools.partial(metrics.events_committed, movement.events))
    audit_seal_after_commit()
    if rows:
        txn.entry_id = rows[0][0]
        if txn.status == Transaction.Status.COMMITTED:
            # The booking moment, taken under the locks (the function stored it in the response and the audit data).
            booked = rows[0][_BOOKED_AT]
            txn.committed_at = booked
            movement.body["committed_at"] = timestamp(booked)
            movement.audit.data["committed_at"] = timestamp(booked)
    txn._state.adding = False
    txn._state.db = connection.alias
    # The customer accounts' state the function wrote, for the cache (as ``entry_post`` does on the ORM path).
    snapshots = {row[_ACCOUNT]: Snapshot(*row[_ACCOUNT + 1 : _BOOKED_AT]) for row in rows}
    transaction.on_commit(lambda: balance_cache_store(snapshots))


def _raise_refusal(exc: DatabaseError, movement: Movement) -> None:
    """Turn the function's refusals (SQLSTATE LX000, the code as message) into the exceptions of ``engine.codes``."""
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "23514" and cause.diag.constraint_name == BALANCE_LIMIT_CONSTRAINT:
        raise BalanceLimit() from None
    if getattr(cause, "sqlstate", None) != "LX000":
        return
    code = cause.diag.message_primary
    if code == "key_bound":
        raise KeyBound() from None
    if code == "system_missing":
        system_shards_forget()
        raise SystemAccountMissing(movement.txn.currency) from None
    try:
        error = refusal(code)
    except KeyError:
        raise AssertionError(f"unknown refusal from {engine_call.FUNCTION}: {code!r}") from exc
    raise error from None