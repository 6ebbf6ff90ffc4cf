"""Reads of transactions, scoped to the user: visible when one of their accounts is a side."""

from django.db.models import Q, QuerySet

from ledger.models import LedgerAccount
from ledgerx.exceptions import NotFound
from transactions.models import Transaction


def _own_account_ids(user) -> list:
    return list(LedgerAccount.objects.filter(owner=user, kind=LedgerAccount.Kind.CUSTOMER).values_list("pk", flat=True))


def transaction_list_for_user(*, user, account_id=None, status: str | None = None, type: str | None = None) -> QuerySet:
    """The user's transactions, newest first. Raises NotFound if ``account_id`` is not theirs."""
    own = _own_account_ids(user)
    if account_id is not None:
        if account_id not in own:
            raise NotFound()
        own = [account_id]
    queryset = Transaction.objects.filter(Q(source_account_id__in=own) | Q(destination_account_id__in=own))
    if status:
        queryset = queryset.filter(status=status)
    if type:
        queryset = queryset.filter(type=type)
    return queryset.select_related("reversed_by")


def transaction_get_for_user(*, user, transaction_id) -> Transaction:
    """One transaction the user is a side of. Raises NotFound otherwise (never reveals existence)."""
    own = _own_account_ids(user)
    try:
        return Transaction.objects.select_related("reversed_by", "source_account").get(
            Q(source_account_id__in=own) | Q(destination_account_id__in=own), pk=transaction_id
        )
    except Transaction.DoesNotExist:
        raise NotFound() from None
