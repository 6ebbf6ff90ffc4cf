"""Reads of transactions, scoped to the user: visible when one of their accounts is a side.

The list is a keyset over (created_at, id), newest first. A transaction has two
sides, and ``source IN own OR destination IN own`` cannot walk one index in
order, so a page is merged from small ordered index range scans instead: per
listed account, its outgoing side and its incoming side (skipping transfers whose
source is also a listed account, already seen as outgoing), each LIMITed to the page
size. The cost of a page depends on the page size and the number of the user's
accounts, not on how many transactions exist.
"""

import heapq
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from ledger.models import LedgerAccount
from ledgerx.exceptions import NotFound
from transactions.models import Batch, Transaction


def _own_account_ids(user) -> list:
    return list(LedgerAccount.objects.filter(owner=user, kind=LedgerAccount.Kind.CUSTOMER).values_list("pk", flat=True))


@dataclass(frozen=True)
class Position:
    """A keyset position: a transaction's (created_at, id)."""

    created_at: datetime
    id: object


def _key(txn: Transaction) -> tuple:
    return (txn.created_at, txn.pk)


def transaction_page_for_user(
    *,
    user,
    limit: int,
    before: Position | None = None,
    after: Position | None = None,
    account_id=None,
    status: str | None = None,
    type: str | None = None,
    batch_id=None,
) -> list[Transaction]:
    """Up to ``limit`` of the user's transactions, newest first.

    ``before``: strictly older than that position (the next page); ``after``:
    strictly newer (the previous page; still returned newest first). Raises
    NotFound if ``account_id`` is not one of the user's accounts.
    """
    own = _own_account_ids(user)
    if account_id is not None:
        if account_id not in own:
            raise NotFound()
        accounts = [account_id]
    else:
        accounts = own
    base = Transaction.objects.select_related("reversed_by")
    if status:
        base = base.filter(status=status)
    if type:
        base = base.filter(type=type)
    if batch_id is not None:
        base = base.filter(batch_id=batch_id)
    if before is not None:
        base = base.filter(Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, pk__lt=before.id))
    if after is not None:
        base = base.filter(Q(created_at__gt=after.created_at) | Q(created_at=after.created_at, pk__gt=after.id))
    ordering = ("created_at", "id") if after is not None else ("-created_at", "-id")
    runs = []
    for account in accounts:
        outgoing = base.filter(source_account_id=account)
        incoming = base.filter(destination_account_id=account).exclude(source_account_id__in=accounts)
        for queryset in (outgoing, incoming):
            runs.append(list(queryset.order_by(*ordering)[:limit]))
    merged = list(heapq.merge(*runs, key=_key, reverse=after is None))[:limit]
    return merged[::-1] if after is not None else merged


def transaction_get_for_user(*, user, transaction_id) -> Transaction:
    """One transaction the user is a side of. Raises NotFound otherwise (never reveals existence)."""
    own = _own_account_ids(user)
    try:
        return Transaction.objects.select_related("reversed_by", "source_account").get(
            Q(source_account_id__in=own) | Q(destination_account_id__in=own), pk=transaction_id
        )
    except Transaction.DoesNotExist:
        raise NotFound() from None


def transaction_list_for_user(*, user) -> QuerySet:
    """All of the user's transactions (unpaginated; for exports and tests)."""
    own = _own_account_ids(user)
    return Transaction.objects.filter(Q(source_account_id__in=own) | Q(destination_account_id__in=own))


def batch_get_for_user(*, user, batch_id) -> Batch:
    """One of the user's batches. Raises NotFound otherwise."""
    try:
        return Batch.objects.get(pk=batch_id, owner=user)
    except Batch.DoesNotExist:
        raise NotFound() from None


def batch_transactions(batch: Batch) -> dict:
    """{id: transaction} of the transactions a batch made (one query, on the batch index)."""
    return {txn.pk: txn for txn in Transaction.objects.filter(batch=batch).select_related("reversed_by")}


def batch_page_for_user(*, user, limit: int, before: Position | None = None, after: Position | None = None) -> list[Batch]:
    """Up to ``limit`` of the user's batches, newest first (keyset over created_at, id)."""
    base = Batch.objects.filter(owner=user)
    if before is not None:
        base = base.filter(Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, pk__lt=before.id))
    if after is not None:
        base = base.filter(Q(created_at__gt=after.created_at) | Q(created_at=after.created_at, pk__gt=after.id))
        return list(base.order_by("created_at", "id")[:limit])[::-1]
    return list(base.order_by("-created_at", "-id")[:limit])
