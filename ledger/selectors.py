"""Reads of the books. Every customer-facing lookup is scoped to its user."""

import functools
import uuid
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


# Fields of an account that never change after it is opened (all ``editable=False``
# and written by no service): enough to route a movement and to decide "is it yours".
# In the model's field order, as ``Model.from_db`` expects a partial row.
_IDENTITY_FIELDS = tuple(
    field.attname
    for field in LedgerAccount._meta.concrete_fields
    if field.attname in {"id", "owner_id", "kind", "currency", "system_role", "shard"}
)


@functools.lru_cache(maxsize=65536)
def _identity_values(account_id: uuid.UUID) -> tuple:
    """The account's never-changing fields, read once per process.

    Raises LedgerAccount.DoesNotExist, which ``lru_cache`` does not remember: an
    account opened after a miss is found on the next call.
    """
    return tuple(LedgerAccount.objects.filter(pk=account_id).values_list(*_IDENTITY_FIELDS).get())


def _account_identity(account_id) -> LedgerAccount:
    """An account instance carrying only its never-changing fields (no query when known).

    Every other field is deferred: reading one loads it from the database, so
    nothing can act on a stale status or balance; movements read those under
    their own lock. Raises NotFound for a malformed id or a missing account.
    """
    try:
        key = account_id if isinstance(account_id, uuid.UUID) else uuid.UUID(str(account_id))
        values = _identity_values(key)
    except (ValueError, LedgerAccount.DoesNotExist):
        raise NotFound() from None
    return LedgerAccount.from_db("default", _IDENTITY_FIELDS, values)


def account_identity_for_user(*, user, account_id) -> LedgerAccount:
    """``account_get_for_user`` for a movement: the user's own customer account, identity only."""
    account = _account_identity(account_id)
    if account.kind != LedgerAccount.Kind.CUSTOMER or account.owner_id != user.pk:
        raise NotFound()
    return account


def account_identity_customer(*, account_id) -> LedgerAccount:
    """``account_get_customer`` for a movement: any customer account, identity only."""
    account = _account_identity(account_id)
    if account.kind != LedgerAccount.Kind.CUSTOMER:
        raise NotFound()
    return account


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
