"""Who may do what in the back office: the Compliance group, plain users, superusers."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import UserFactory
from audit.compliance import GROUP_NAME
from audit.models import AuditAction, AuditRecord
from audit.tests.admin.conftest import action_post
from ledger.models import LedgerAccount
from transactions.tests.helpers import funded_account

pytestmark = pytest.mark.django_db


def test_compliance_group_has_exactly_view_and_action_permissions():
    perms = set(
        Group.objects.get(name=GROUP_NAME).permissions.values_list("content_type__app_label", "codename")
    )
    assert perms == {
        ("accounts", "view_user"),
        ("ledger", "view_ledgeraccount"),
        ("ledger", "view_journalentry"),
        ("ledger", "view_posting"),
        ("transactions", "view_transaction"),
        ("audit", "view_auditrecord"),
        ("audit", "view_auditseal"),
        ("audit", "view_verificationrun"),
        ("audit", "view_dashboard"),
        ("accounts", "suspend_user"),
        ("ledger", "freeze_ledgeraccount"),
        ("transactions", "reverse_transaction"),
        ("audit", "verify_auditrecord"),
        ("approvals", "view_approvalrequest"),
        ("approvals", "decide_approvalrequest"),
    }
    assert not any(codename.startswith(("add_", "change_", "delete_")) for _, codename in perms)


def test_compliance_can_view_every_list(compliance_client):
    funded_account(amount=100)
    for name in (
        "accounts_user", "ledger_ledgeraccount", "ledger_journalentry", "ledger_posting",
        "transactions_transaction", "audit_auditrecord", "audit_verificationrun", "audit_dashboard",
    ):
        assert compliance_client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name


def test_compliance_can_freeze_but_not_edit_an_account(compliance_client, compliance_user):
    account = funded_account(amount=900)
    response = action_post(
        compliance_client, reverse("admin:ledger_ledgeraccount_changelist"), "freeze_accounts", [account.pk],
        confirm="yes", reason="aml alert",
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.status == "frozen"
    assert AuditRecord.objects.get(action=AuditAction.ACCOUNT_FROZEN).actor_id == compliance_user.pk
    change = reverse("admin:ledger_ledgeraccount_change", args=[account.pk])
    assert compliance_client.post(change, {"name": "renamed"}).status_code == 403
    account.refresh_from_db()
    assert account.name == ""


def test_compliance_cannot_grant_permissions(compliance_client, compliance_user):
    change = reverse("admin:accounts_user_change", args=[compliance_user.pk])
    everything = list(Group.objects.values_list("pk", flat=True))
    response = compliance_client.post(
        change,
        {"email": compliance_user.email, "full_name": "x", "role": "admin", "is_staff": "on",
         "is_superuser": "on", "is_active": "on", "groups": everything},
    )
    assert response.status_code == 403
    compliance_user.refresh_from_db()
    assert (compliance_user.role, compliance_user.is_superuser) == ("user", False)
    assert compliance_client.get(reverse("admin:auth_group_changelist")).status_code == 403
    assert compliance_client.get(reverse("admin:auth_group_add")).status_code == 403


def test_compliance_can_suspend_users(compliance_client):
    target = UserFactory()
    response = action_post(
        compliance_client, reverse("admin:accounts_user_changelist"), "suspend_users", [target.pk],
        confirm="yes", reason="kyc expired",
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.status == "suspended"


def test_staff_without_the_action_permission_does_not_get_the_action(client):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_ledgeraccount"))
    client.force_login(viewer)
    account = funded_account(amount=100)
    url = reverse("admin:ledger_ledgeraccount_changelist")
    page = client.get(url)
    assert page.status_code == 200
    assert "freeze_accounts" not in page.content.decode()
    response = action_post(client, url, "freeze_accounts", [account.pk], confirm="yes", reason="try")
    assert LedgerAccount.objects.get(pk=account.pk).status == "active"
    assert not AuditRecord.objects.filter(action=AuditAction.ACCOUNT_FROZEN).exists()
    assert response.status_code in (200, 302)  # Django answers an unknown action with the list and a message


def test_plain_users_are_refused_by_the_admin(client):
    user = UserFactory()
    client.force_login(user)
    for url in (reverse("admin:index"), reverse("admin:accounts_user_changelist"), reverse("admin:audit_dashboard_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_plain_user_cannot_log_in_to_the_admin(client):
    user = UserFactory(email="someone@example.com")
    response = client.post(reverse("admin:login"), {"username": user.email, "password": "correct-horse-battery-9"})
    assert response.status_code == 200  # the form again, with an error
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db(transaction=True)
def test_compliance_group_is_restored_after_a_flush():
    """Test databases are flushed between transactional tests; the group must survive that."""
    from django.core.management import call_command

    Group.objects.filter(name=GROUP_NAME).delete()
    call_command("flush", verbosity=0, interactive=False)
    assert Group.objects.get(name=GROUP_NAME).permissions.count() == 15
    assert User.objects.count() == 0
