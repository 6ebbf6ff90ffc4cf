"""Reads of the books. Every customer-facing lookup is scoped to its user."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet, Sum

from ledger.balance_cache import Snapshot, balance_cache_fetch, balance_cache_store
from ledger.models import LedgerAccount, Posting
from ledgerx.exceptions import NotFound


_BALANCE_COLUMNS = {"posted", "pending", "version"}


def account_list_for_user(*, user) -> QuerySet:
    return LedgerAccount.objects.filter(owner=user, kind=LedgerAccount.Kind.CUSTOMER)


def account_get_for_user(*, user, account_id) -> LedgerAccount:
    """The user's own account. Raises NotFound for a missing account or another user's."""
    try:
        return LedgerAccount.objects.get(pk=account_id, owner=user, kind=LedgerAccount.Kind.CUSTOMER)
    except (LedgerAccount.DoesNotExist, ValueError):
        raise NotFound() from None


def account_get_customer(*, account_id) -> LedgerAccount:
    """Any customer account (a transfer destination). Raises NotFound."""
    try:
        return LedgerAccount.objects.get(pk=account_id, kind=LedgerAccount.Kind.CUSTOMER)
    except (LedgerAccount.DoesNotExist, ValueError):
        raise NotFound() from None


def account_balances(*, account_ids: list, fresh_rows: Iterable[LedgerAccount] = ()) -> dict:
    """{account_id: Snapshot(posted, pending, version)}: the cache first, the database for misses.

    Writers store their new balances in the cache before their response is
    sent, and stores are version-guarded (``ledger.balance_cache``), so a hit
    is never older than a change whose response a client has received. Misses
    (and a cache that is down) are answered from the database and stored.
    ``fresh_rows`` are accounts the caller read from the database in this
    request with their balance columns: a miss among them is answered from the
    row, not read a second time (it is no older than the request either).
    """
    ids = list(account_ids)
    result = balance_cache_fetch(ids)
    missing = [account_id for account_id in ids if account_id not in result]
    if missing:
        loaded = {
            row.pk: Snapshot(row.posted, row.pending, row.version)
            for row in fresh_rows
            if row.pk in missing and not _BALANCE_COLUMNS & row.get_deferred_fields()
        }
        unread = [account_id for account_id in missing if account_id not in loaded]
        if unread:
            loaded.update(
                (pk, Snapshot(posted, pending, version))
                for pk, posted, pending, version in LedgerAccount.objects.filter(pk__in=unread).values_list(
                    "pk", "posted", "pending", "version"
                )
            )
        balance_cache_store(loaded)
        result.update(loaded)
    return result


def account_posted_as_of(*, account: LedgerAccount, as_of: datetime) -> int:
    """The posted balance at ``as_of``: the last posting's balance_after (one index lookup)."""
    last = (
        Posting.objects.filter(account=account, created_at__lte=as_of)
        .order_by("-created_at", "-id")
        .values_list("balance_after", flat=True)
        .first()
    )
    return last or 0


def account_statement(*, account: LedgerAccount) -> QuerySet:
    """Statement lines (postings), newest first; the entry carries transaction id and type."""
    return Posting.objects.filter(account=account).select_related("entry").order_by("-id")


def system_balance(*, currency: str, role: str) -> int:
    """A system account's posted balance: the sum over its shards."""
    total = LedgerAccount.objects.filter(
        kind=LedgerAccount.Kind.SYSTEM, currency=currency, system_role=role
    ).aggregate(total=Sum("posted"))["total"]
    return total or 0
