"""Reads of the books. Every customer-facing lookup is scoped to its user."""

from datetime import datetime

from django.db.models import QuerySet, Sum

from ledger.balance_cache import Identity, Snapshot, account_cache_fetch, balance_cache_store
from ledger.models import LedgerAccount, Posting
from ledgerx.exceptions import NotFound


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


def account_view_for_user(*, user, account_id) -> tuple[Snapshot, Identity]:
    """The user's own account as the API shows it: from the cache (no query), else its row (then cached).

    A cached entry is never older than a change whose response a client has
    received (``ledger.balance_cache``); owner and kind never change, so the
    cached identity answers "is it yours" as the row would. Raises NotFound.
    """
    cached = account_cache_fetch(account_id)
    if cached is not None:
        state, identity = cached
        if identity.kind != LedgerAccount.Kind.CUSTOMER or identity.owner_id != str(user.pk):
            raise NotFound()
        return state, identity
    account = account_get_for_user(user=user, account_id=account_id)
    state, identity = Snapshot.of(account), Identity.of(account)
    balance_cache_store({account.pk: state}, {account.pk: identity})
    return state, identity


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
