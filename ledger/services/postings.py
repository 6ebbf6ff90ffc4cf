"""The write path of the books: journal entries, postings, balances and holds of locked accounts.

The callers hold the accounts' locks (``locking.accounts_lock``) in their
durable transaction; the checks here (funds, then the balance ceiling) run on
the locked rows, and the account cache is refreshed once the transaction
commits.
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from ledger.balance_cache import Snapshot, balance_cache_store
from ledger.exceptions import BALANCE_LIMIT, BalanceLimit, InsufficientFunds, UnbalancedEntry
from ledger.models import JournalEntry, LedgerAccount, Posting

_ACCOUNT_TABLE = LedgerAccount._meta.db_table
_ENTRY_TABLE = JournalEntry._meta.db_table
_POSTING_TABLE = Posting._meta.db_table


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
