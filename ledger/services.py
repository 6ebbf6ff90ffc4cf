"""Every write to the books.

Business services (``transactions.services``) open the database transaction,
lock with ``accounts_lock`` and then call ``entry_post`` / ``holds_adjust``,
the Python write path for postings and balances. New movements on PostgreSQL
are written by one SQL function instead (``transactions.movements``; its only
text is ``transactions/engine/sql/movements.sql``), so that a movement is one
round trip and its row locks are held only for the function's own writes; it
follows the same lock order and rules as this module. Holds' commit/void,
reversals and everything on SQLite come through here.
"""

import random
import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.services import backoffice_actor_check
from audit.models import AuditAction
from audit.services.records import audit_record
from events.models import EventType
from events.services import account_event_record
from ledger.balance_cache import Snapshot, balance_cache_store
from ledger.exceptions import BALANCE_LIMIT, BalanceLimit, InsufficientFunds, UnbalancedEntry
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.money import currency_supported
from ledgerx.exceptions import InvalidState, ValidationFailed
from ledgerx.observability import tracing
from ledgerx.text import reason_clean, text_error

_ACCOUNT_TABLE = LedgerAccount._meta.db_table
_ENTRY_TABLE = JournalEntry._meta.db_table
_POSTING_TABLE = Posting._meta.db_table
_NUMBER_ATTEMPTS = 5


def _system_shards() -> int:
    return max(1, settings.LEDGER_SYSTEM_SHARDS)


# --- Customer accounts ---------------------------------------------------------------


def _luhn_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def _account_number_new() -> str:
    """12 digits: 11 random + a Luhn check digit (catches typos when read out)."""
    body = f"{secrets.randbelow(10**11):011d}"
    return body + _luhn_digit(body)


def _name_check(name) -> None:
    """An account's display name: a string up to the column's length. Raises ValidationFailed."""
    limit = LedgerAccount._meta.get_field("name").max_length
    if not isinstance(name, str) or len(name) > limit:
        raise ValidationFailed(fields={"name": [f"Must be a string of at most {limit} characters."]})
    error = text_error(name)
    if error:
        raise ValidationFailed(fields={"name": [error]})


def account_open(*, actor, owner, currency: str, name: str = "") -> LedgerAccount:
    """Open a customer account for ``owner``.

    Raises ValidationFailed for an unsupported currency or a name over 100 chars.
    """
    if not currency_supported(currency):
        raise ValidationFailed(fields={"currency": [f"Unsupported currency. Use one of: {', '.join(settings.CURRENCIES)}."]})
    _name_check(name)
    system_accounts_ensure(currency=currency)
    for _attempt in range(_NUMBER_ATTEMPTS):
        number = _account_number_new()
        if not LedgerAccount.objects.filter(number=number).exists():
            break
    with transaction.atomic(durable=True):
        account = LedgerAccount.objects.create(
            owner=owner, currency=currency, name=name, number=number, kind=LedgerAccount.Kind.CUSTOMER
        )
        audit_record(
            actor=actor,
            action=AuditAction.ACCOUNT_OPENED,
            target_type="ledger_account",
            target_id=account.pk,
            data={"owner": str(owner.pk), "currency": currency, "number": number, "name": name},
        )
    return account


_STATUS_EVENTS = {LedgerAccount.Status.FROZEN: EventType.ACCOUNT_FROZEN, LedgerAccount.Status.ACTIVE: EventType.ACCOUNT_UNFROZEN}


def _account_status_set(*, actor, account: LedgerAccount, reason: str, new: str, action: AuditAction) -> LedgerAccount:
    reason = reason_clean(reason)
    backoffice_actor_check(actor)
    with transaction.atomic(durable=True):
        locked = LedgerAccount.objects.select_for_update().get(pk=account.pk)
        if locked.kind != LedgerAccount.Kind.CUSTOMER:
            raise InvalidState(f"System accounts cannot be {'frozen' if new == LedgerAccount.Status.FROZEN else 'unfrozen'}.")
        if locked.status == new:
            raise InvalidState(f"The account is already {new}.")
        old = locked.status
        locked.status = new
        locked.version += 1
        locked.save(update_fields=["status", "version"])
        account_cache_after_commit([locked])
        audit_record(
            actor=actor,
            action=action,
            target_type="ledger_account",
            target_id=locked.pk,
            data={"reason": reason, "old_status": old, "new_status": new},
        )
        account_event_record(type=_STATUS_EVENTS[new], account=locked)
    account.status, account.version = locked.status, locked.version
    return locked


def account_rename(*, account: LedgerAccount, name: str) -> LedgerAccount:
    """Give ``account`` a new display name (the back office's only edit of an account).

    Under the row lock, with a version bump like every change to what the
    account endpoint shows, so the cached account follows. Runs in the
    caller's transaction (the admin's change view, which also audits the edit).
    """
    _name_check(name)
    with transaction.atomic():
        locked = LedgerAccount.objects.select_for_update().get(pk=account.pk)
        locked.name = name
        locked.version += 1
        locked.save(update_fields=["name", "version"])
        account_cache_after_commit([locked])
    account.name, account.version = locked.name, locked.version
    return locked


def account_freeze(*, actor, account: LedgerAccount, reason: str) -> LedgerAccount:
    """Freeze: the account can neither send nor receive. Raises InvalidState if already frozen."""
    return _account_status_set(
        actor=actor, account=account, reason=reason, new=LedgerAccount.Status.FROZEN, action=AuditAction.ACCOUNT_FROZEN
    )


def account_unfreeze(*, actor, account: LedgerAccount, reason: str) -> LedgerAccount:
    """Unfreeze. Raises InvalidState if the account is active."""
    return _account_status_set(
        actor=actor, account=account, reason=reason, new=LedgerAccount.Status.ACTIVE, action=AuditAction.ACCOUNT_UNFROZEN
    )


# --- System accounts -----------------------------------------------------------------


class SystemAccountMissing(Exception):
    """Internal: the system shards of a currency do not exist yet (see ``system_accounts_ensure``)."""


def system_accounts_ensure(*, currency: str) -> None:
    """Create the funding and payouts shards of ``currency`` if missing.

    Runs outside any money transaction (callers catch SystemAccountMissing,
    call this, and retry). The unique constraint on (currency, role, shard)
    makes concurrent first uses converge.
    """
    for role in LedgerAccount.SystemRole.values:
        existing = set(
            LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM, currency=currency, system_role=role).values_list(
                "shard", flat=True
            )
        )
        for shard in range(_system_shards()):
            if shard in existing:
                continue
            try:
                with transaction.atomic():
                    LedgerAccount.objects.create(
                        kind=LedgerAccount.Kind.SYSTEM,
                        system_role=role,
                        shard=shard,
                        currency=currency,
                        number=f"SYS-{currency}-{role[:3].upper().rstrip('_')}-{shard:02d}",
                        name=f"System {role} {currency} #{shard}",
                    )
            except IntegrityError:  # created concurrently
                pass


_shard_ids: dict[tuple[str, str], list] = {}


def system_shard_pick(*, currency: str, role: str) -> uuid.UUID:
    """The id of one shard of a system account, chosen at random (no lock taken).

    The ids are read once per process and kept: system accounts are never
    deleted or renumbered. Raises SystemAccountMissing when the currency has no
    shards yet (callers ensure them and retry); a caller whose write then finds
    the id gone (a test database flushed under a long-lived process) calls
    ``system_shards_forget`` and retries.
    """
    ids = _shard_ids.get((currency, role))
    if not ids:
        ids = list(
            LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM, currency=currency, system_role=role)
            .order_by("shard")
            .values_list("pk", flat=True)
        )
        if not ids:
            raise SystemAccountMissing(currency)
        _shard_ids[(currency, role)] = ids
    return random.choice(ids)


def system_shards_forget() -> None:
    _shard_ids.clear()


# --- Locking ---------------------------------------------------------------------------


class LockResult(NamedTuple):
    accounts: dict  # {id: locked LedgerAccount}
    user_status: str | None  # the share-locked user's status, when one was asked for


def _user_status_sql(user) -> RawSQL:
    """The user's status as a scalar sub-select, FOR SHARE on PostgreSQL.

    A concurrent suspension (an UPDATE of that row) then waits for the money
    transaction, or is seen by it. On SQLite the transaction already holds the
    database's write lock.
    """
    table = user._meta.db_table
    if connection.vendor == "postgresql":
        return RawSQL(f'SELECT "status" FROM "{table}" WHERE "id" = %s FOR SHARE', [user.pk])
    return RawSQL(f'SELECT "status" FROM "{table}" WHERE "id" = %s', [user.pk.hex])


def accounts_lock(*, ids: Iterable, share_user=None) -> LockResult:
    """Lock the accounts with ONE ``SELECT ... FOR UPDATE`` in primary-key order.

    With ``share_user`` the same query also reads that user's status under
    FOR SHARE (the suspension check). Every money service locks through here
    (and the SQL movement function locks the same way), so movements touching
    the same accounts take the locks in the same order and cannot deadlock.
    Must run inside the caller's transaction. Raises
    LedgerAccount.DoesNotExist for an unknown id.
    """
    wanted = set(ids)
    if not wanted:
        # Nothing to lock (a batch whose every account is unknown): no money can move,
        # so the user's status needs no lock, only reading.
        status = None if share_user is None else type(share_user).objects.filter(pk=share_user.pk).values_list("status", flat=True).first()
        return LockResult({}, status)
    with tracing.span("ledgerx.movement.lock_wait", **{"ledgerx.accounts": len(wanted)}):
        if connection.vendor == "postgresql":
            rows = _accounts_lock_postgres(wanted, share_user)
        else:
            queryset = LedgerAccount.objects.select_for_update(of=("self",)).filter(pk__in=wanted).order_by("pk")
            if share_user is not None:
                queryset = queryset.annotate(locked_user_status=_user_status_sql(share_user))
            rows = list(queryset)
    found = {row.pk: row for row in rows}
    if not wanted.issubset(found):
        raise LedgerAccount.DoesNotExist("A ledger account to lock does not exist.")
    user_status = rows[0].locked_user_status if share_user is not None else None
    return LockResult(found, user_status)


_ACCOUNT_ATTNAMES = [field.attname for field in LedgerAccount._meta.concrete_fields]
_ACCOUNT_COLUMNS = ", ".join(
    f'"{_ACCOUNT_TABLE}"."{field.column}"' for field in LedgerAccount._meta.concrete_fields
)


def _accounts_lock_postgres(wanted: set, share_user) -> list[LedgerAccount]:
    """``accounts_lock``'s query as hand-written SQL, the same statement the ORM builds.

    Hot path of every movement: compiling the queryset costs more client CPU
    than the round trip itself. The rows become
    model instances through ``from_db`` (psycopg already returns UUIDs,
    aware datetimes and ints, so no converters are needed).
    """
    params: list = []
    status_column = ""
    if share_user is not None:
        user_table = share_user._meta.db_table
        status_column = f', (SELECT "status" FROM "{user_table}" WHERE "id" = %s FOR SHARE) AS "locked_user_status"'
        params.append(share_user.pk)
    placeholders = ", ".join(["%s"] * len(wanted))
    condition = f'"{_ACCOUNT_TABLE}"."id" IN ({placeholders})'
    params += list(wanted)
    sql = (
        f'SELECT {_ACCOUNT_COLUMNS}{status_column} FROM "{_ACCOUNT_TABLE}" WHERE {condition} '
        f'ORDER BY "{_ACCOUNT_TABLE}"."id" ASC FOR UPDATE OF "{_ACCOUNT_TABLE}"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    width = len(_ACCOUNT_ATTNAMES)
    rows = []
    for values in fetched:
        account = LedgerAccount.from_db(connection.alias, _ACCOUNT_ATTNAMES, values[:width])
        if share_user is not None:
            account.locked_user_status = values[width]
        rows.append(account)
    return rows


# --- The write path --------------------------------------------------------------------


def balances_save(accounts: Sequence[LedgerAccount]) -> None:
    """One UPDATE for all changed balances and versions (the rows are locked by the caller)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*balances_statement(accounts))
        return
    LedgerAccount.objects.bulk_update(accounts, ["posted", "pending", "version"])


def balances_statement(accounts: Sequence[LedgerAccount]) -> tuple[str, list]:
    """PostgreSQL: ``balances_save``'s UPDATE as (sql, params), for a writer that sends it inside its own statement."""
    values = ", ".join(["(%s::uuid, %s::bigint, %s::bigint, %s::bigint)"] * len(accounts))
    params: list = []
    for account in accounts:
        params += [account.pk, account.posted, account.pending, account.version]
    sql = (
        f'UPDATE "{_ACCOUNT_TABLE}" AS a SET posted = v.posted, pending = v.pending, version = v.version '
        f"FROM (VALUES {values}) AS v(id, posted, pending, version) WHERE a.id = v.id"
    )
    return sql, params


def account_cache_after_commit(accounts: Sequence[LedgerAccount]) -> None:
    """Store the customer accounts' new state in the account cache once the current transaction commits.

    Every writer of posted, pending, status or name (each bumps ``version``)
    calls it, ``seed_demo``'s bulk path included. System shards are not
    cached: their balances are summed on read.
    """
    snapshots = {account.pk: Snapshot.of(account) for account in accounts if account.is_customer}
    transaction.on_commit(lambda: balance_cache_store(snapshots))


def _customer_check(account: LedgerAccount) -> None:
    """Funds first, then the ceiling: the refusal order every movement follows."""
    if account.is_customer and (account.pending < 0 or account.posted < account.pending):
        raise InsufficientFunds()
    if account.is_customer and account.posted > BALANCE_LIMIT:
        raise BalanceLimit()


def entry_post(
    *,
    ref_type: str,
    ref_id: uuid.UUID,
    lines: Sequence[tuple[LedgerAccount, int]],
    pending_deltas: dict | None = None,
    now: datetime | None = None,
) -> JournalEntry:
    """Write one balanced journal entry and the balances it changes.

    ``lines`` are (locked account, signed amount); ``pending_deltas`` maps a
    locked account to a change of its pending (hold) total. The caller holds
    the locks (``accounts_lock``) in its durable transaction. Raises
    UnbalancedEntry for postings that do not sum to zero per currency (a bug,
    never a client error), InsufficientFunds if a customer account would end
    below zero or below its holds. The cache is refreshed after commit.

    ``now`` (default: the current time) must be taken under the locks: the
    postings' ``created_at`` has to follow the order their ``balance_after``
    is computed in, or ``balance?as_of=`` would mix up concurrent movements.
    On PostgreSQL the postings take the database clock at write time instead.
    """
    if len(lines) < 2:
        raise UnbalancedEntry("A journal entry needs at least two postings.")
    totals: dict[str, int] = defaultdict(int)
    for account, amount in lines:
        if type(amount) is not int or amount == 0:
            raise UnbalancedEntry("Posting amounts are non-zero integers.")
        totals[account.currency] += amount
    if any(totals.values()):
        raise UnbalancedEntry(f"Postings do not balance: {dict(totals)}")
    now = now or timezone.now()
    touched: dict = {}
    postings = []
    for account, amount in lines:
        account.posted += amount
        touched[account.pk] = account
        postings.append(
            Posting(
                account=account, currency=account.currency, amount=amount, balance_after=account.posted, created_at=now
            )
        )
    for account, delta in (pending_deltas or {}).items():
        account.pending += delta
        touched[account.pk] = account
    for account in touched.values():
        _customer_check(account)
        account.version += 1
    accounts = list(touched.values())
    if connection.vendor == "postgresql":
        entry = _entry_write_postgres(ref_type=ref_type, ref_id=ref_id, now=now, postings=postings, accounts=accounts)
    else:
        entry = JournalEntry.objects.create(ref_type=ref_type, ref_id=ref_id, created_at=now)
        for posting in postings:
            posting.entry = entry
        Posting.objects.bulk_create(postings)
        balances_save(accounts)
    account_cache_after_commit(accounts)
    return entry


def _entry_write_postgres(*, ref_type, ref_id, now, postings: list[Posting], accounts: list[LedgerAccount]) -> JournalEntry:
    """Entry, postings and balances in ONE statement (data-modifying CTEs): one round trip.

    The postings are stamped with the database clock under the caller's locks
    (as ``ledgerx_movement_create`` does), so on every account their
    ``created_at`` follows the order their ``balance_after`` was computed in
    and ``balance?as_of=`` is exact. The deferred balance trigger still checks
    the postings at commit.
    """
    posting_rows = ", ".join(["(%s::uuid, %s, %s::bigint, %s::bigint)"] * len(postings))
    balance_rows = ", ".join(["(%s::uuid, %s::bigint, %s::bigint, %s::bigint)"] * len(accounts))
    params: list = [ref_type, ref_id, now]
    for posting in postings:
        params += [posting.account_id, posting.currency, posting.amount, posting.balance_after]
    for account in accounts:
        params += [account.pk, account.posted, account.pending, account.version]
    sql = (
        f'WITH e AS (INSERT INTO "{_ENTRY_TABLE}" (ref_type, ref_id, created_at) VALUES (%s, %s, %s) RETURNING id), '
        f'p AS (INSERT INTO "{_POSTING_TABLE}" (entry_id, account_id, currency, amount, balance_after, created_at) '
        f"SELECT e.id, v.account_id, v.currency, v.amount, v.balance_after, clock_timestamp() FROM e, "
        f"(VALUES {posting_rows}) AS v(account_id, currency, amount, balance_after)), "
        f'u AS (UPDATE "{_ACCOUNT_TABLE}" AS a SET posted = b.posted, pending = b.pending, version = b.version '
        f"FROM (VALUES {balance_rows}) AS b(id, posted, pending, version) WHERE a.id = b.id) "
        f"SELECT id FROM e"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (entry_id,) = cursor.fetchone()
    entry = JournalEntry(id=entry_id, ref_type=ref_type, ref_id=ref_id, created_at=now)
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


def holds_adjust(*, deltas: dict) -> None:
    """Change the pending (held) totals of locked accounts, without postings.

    ``deltas`` maps a locked account to +amount (reserve) or -amount (release).
    Raises InsufficientFunds if a customer account's holds would exceed its
    posted balance.
    """
    accounts = []
    for account, delta in deltas.items():
        account.pending += delta
        _customer_check(account)
        account.version += 1
        accounts.append(account)
    balances_save(accounts)
    account_cache_after_commit(accounts)
