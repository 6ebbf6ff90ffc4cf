"""Locking the accounts of a movement: one ``SELECT ... FOR UPDATE`` in primary-key order.

Every money service locks through ``accounts_lock`` (and the SQL movement
function locks the same way), so movements that touch the same accounts take
their locks in the same order and cannot deadlock.
"""

from collections.abc import Iterable
from typing import NamedTuple

from django.db import connection
from django.db.models.expressions import RawSQL

from ledger.models import LedgerAccount
from ledgerx.observability import tracing

_ACCOUNT_TABLE = LedgerAccount._meta.db_table


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
