"""The audit trail found by an account's number (with its money events) and a reversal under the original."""

import pytest
from django.urls import reverse

from accounts.tests.factories import AdminFactory
from audit.models import AuditAction
from ledger.services.customer_accounts import account_freeze
from transactions.services.money import transfer_create
from transactions.services.reversals import transaction_reverse
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = pytest.mark.django_db
URL = reverse("admin:audit_auditrecord_changelist")


def _actions(response) -> list[str]:
    return sorted(record.action for record in response.context["cl"].result_list)


def test_an_account_number_finds_its_records_and_its_money(superuser_client):
    admin_user = AdminFactory()
    source, destination = funded_account(amount=5000), funded_account(amount=0)
    txn = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=1200, pin=PIN, idempotency_key=new_key()
    ).transaction
    account_freeze(actor=admin_user, account=source, reason="check")
    response = superuser_client.get(URL, {"q": source.number.lower()})
    actions = _actions(response)
    assert AuditAction.ACCOUNT_FROZEN in actions
    assert AuditAction.TRANSFER_CREATED in actions and AuditAction.DEPOSIT_CREATED in actions
    other = superuser_client.get(URL, {"q": "999999999999"})
    assert list(other.context["cl"].result_list) == []
    # The reversal's record is found under the original transaction's id too.
    reversal = transaction_reverse(actor=admin_user, transaction=txn, reason="sent in error")
    by_original = _actions(superuser_client.get(URL, {"q": str(txn.pk)}))
    assert by_original == sorted([AuditAction.TRANSFER_CREATED, AuditAction.TRANSACTION_REVERSED])
    assert reversal.pk


def test_the_trail_shows_the_reason_and_links_the_target(superuser_client):
    account = funded_account(amount=100)
    account_freeze(actor=AdminFactory(), account=account, reason="sanctions list match")
    page = superuser_client.get(URL, {"q": account.number}).content.decode()
    assert "sanctions list match" in page
    assert f'href="{reverse("admin:ledger_ledgeraccount_change", args=[account.pk])}"' in page
