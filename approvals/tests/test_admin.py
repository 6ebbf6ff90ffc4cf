"""The Approvals queue in the Django admin: request by one officer, approve by another."""

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings
from django.urls import reverse

from accounts.tests.factories import UserFactory
from approvals.models import ApprovalRequest
from audit.compliance import GROUP_NAME
from transactions.models import Transaction
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, books, funded_account, new_key

pytestmark = pytest.mark.django_db
TXN_LIST = reverse("admin:transactions_transaction_changelist")
QUEUE = reverse("admin:approvals_approvalrequest_changelist")


def _officer(email):
    user = UserFactory(email=email, is_staff=True)
    user.groups.add(Group.objects.get(name=GROUP_NAME))
    return user


def action_post(client, url, action, pks, **data):
    body = {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0", **data}
    return client.post(url, body, follow=True)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


@override_settings(FOUR_EYES_AMOUNT={"USD": 100_000})
def test_reverse_from_the_admin_waits_in_the_queue_until_another_officer_approves(client):
    maker, checker = _officer("maker@example.com"), _officer("checker@example.com")
    source, destination = funded_account(amount=200_000), funded_account(amount=0)
    txn = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=200_000, pin=PIN, idempotency_key=new_key()
    ).transaction
    client.force_login(maker)
    before = books()
    done = action_post(client, TXN_LIST, "reverse_transactions", [txn.pk], confirm="yes", reason="chargeback")
    approval = ApprovalRequest.objects.get()
    assert f"waits for a second admin: approval request {approval.pk}" in " ".join(_messages(done))
    assert books() == before
    page = client.get(QUEUE + "?status=pending").content.decode()
    assert 'id="ledgerx-approvals-badge"' in page and "Approvals <span>1</span> pending" in page
    assert "chargeback" in page and str(txn.pk) in page

    # The maker's own approval is refused, by name.
    own = action_post(client, QUEUE, "approve_requests", [approval.pk], confirm="yes", reason="mine")
    assert "Approve refused for" in " ".join(_messages(own))
    assert "another admin must approve it" in " ".join(_messages(own))
    assert ApprovalRequest.objects.get().status == "pending"

    client.force_login(checker)
    approved = action_post(client, QUEUE, "approve_requests", [approval.pk], confirm="yes", reason="ok")
    assert "Approve:" in " ".join(_messages(approved))
    approval.refresh_from_db()
    reversal = Transaction.objects.get(reverses=txn)
    assert (approval.status, approval.decided_by_id, approval.result_id) == ("approved", checker.pk, reversal.pk)
    assert "Approvals <span>0</span> pending" in client.get(QUEUE).content.decode()


def test_the_admin_is_branded_and_view_site_opens_the_api_docs(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("admin:index")).content.decode()
    assert "LedgerX back office" in page and "Django administration" not in page
    assert 'href="/api/docs/"' in page
    assert 'rel="icon"' in page
