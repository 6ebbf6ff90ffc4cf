"""The identity of an account a movement names: read once per process, never its balances or status."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger import selectors
from ledger.models import LedgerAccount
from ledger.tests.factories import customer_account
from ledgerx.exceptions import NotFound

pytestmark = pytest.mark.django_db


def test_an_account_known_to_the_process_is_named_without_a_query():
    account = customer_account()
    first = selectors.account_identity_for_user(user=account.owner, account_id=account.pk)
    with CaptureQueriesContext(connection) as queries:
        again = selectors.account_identity_for_user(user=account.owner, account_id=str(account.pk).upper())
        customer = selectors.account_identity_customer(account_id=account.pk)
    assert len(queries) == 0
    assert first.pk == again.pk == customer.pk == account.pk
    assert (again.owner_id, again.currency, again.kind) == (account.owner_id, account.currency, "customer")


def test_status_and_balances_are_never_served_from_the_process_memory():
    account = customer_account()
    selectors.account_identity_customer(account_id=account.pk)
    LedgerAccount.objects.filter(pk=account.pk).update(status=LedgerAccount.Status.FROZEN, posted=700)
    identity = selectors.account_identity_customer(account_id=account.pk)
    assert (identity.status, identity.posted) == ("frozen", 700)  # deferred: read from the row


def test_another_users_account_a_system_account_and_a_bad_id_are_not_found():
    account, stranger = customer_account(), customer_account()
    system = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM).first()
    assert system is not None
    for call in (
        lambda: selectors.account_identity_for_user(user=stranger.owner, account_id=account.pk),
        lambda: selectors.account_identity_for_user(user=account.owner, account_id=system.pk),
        lambda: selectors.account_identity_customer(account_id=system.pk),
        lambda: selectors.account_identity_customer(account_id="not-a-uuid"),
    ):
        with pytest.raises(NotFound):
            call()


def test_a_miss_is_not_remembered():
    account_id = uuid.uuid4()
    with pytest.raises(NotFound):
        selectors.account_identity_customer(account_id=account_id)
    account = customer_account()
    LedgerAccount.objects.filter(pk=account.pk).update(id=account_id)
    assert selectors.account_identity_customer(account_id=account_id).owner_id == account.owner_id
