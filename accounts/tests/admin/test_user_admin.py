import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.admin import UserAdmin
from accounts.models import User
from accounts.tests.factories import UserFactory
from audit.compliance import GROUP_NAME
from audit.models import AuditAction, AuditRecord
from audit.tests.admin.conftest import action_post

pytestmark = pytest.mark.django_db
URL = reverse("admin:accounts_user_changelist")


def test_changelist_searches_by_the_start_of_an_email_and_filters_by_status(superuser_client):
    UserFactory(email="alice@example.com", full_name="Alice Adams")
    UserFactory(email="bob@example.com", full_name="Bob Brown", status=User.Status.SUSPENDED)
    response = superuser_client.get(URL, {"q": "Alice@example.com"})
    assert response.status_code == 200
    assert [user.email for user in response.context["cl"].result_list] == ["alice@example.com"]
    # The start of an email or a name is an index range; a fragment inside one would be a scan: not searched.
    # (by email: the other users' names are random and could start with "alice")
    assert [user.email for user in superuser_client.get(URL, {"q": "alice@"}).context["cl"].result_list] == ["alice@example.com"]
    assert list(superuser_client.get(URL, {"q": "example.com"}).context["cl"].result_list) == []
    response = superuser_client.get(URL, {"status__exact": "suspended"})
    assert [user.email for user in response.context["cl"].result_list] == ["bob@example.com"]


def test_suspend_shows_a_confirmation_page_with_a_mandatory_reason(superuser_client):
    target = UserFactory()
    response = action_post(superuser_client, URL, "suspend_users", [target.pk])
    assert response.status_code == 200
    assert response.templates[0].name == "admin/ledgerx/confirm_action.html"
    assert 'name="reason"' in response.content.decode()
    assert target.email in response.content.decode()
    target.refresh_from_db()
    assert target.status == "active"
    assert not AuditRecord.objects.filter(action=AuditAction.USER_SUSPENDED).exists()


def test_suspend_with_a_blank_reason_changes_nothing(superuser_client):
    target = UserFactory()
    response = action_post(superuser_client, URL, "suspend_users", [target.pk], confirm="yes", reason="   ")
    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    target.refresh_from_db()
    assert target.status == "active"
    assert not AuditRecord.objects.filter(action=AuditAction.USER_SUSPENDED).exists()


def test_suspend_with_a_reason_calls_the_service_and_audits(superuser_client, admin_user):
    target = UserFactory()
    response = action_post(superuser_client, URL, "suspend_users", [target.pk], confirm="yes", reason="fraud report #7")
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.status == "suspended"
    record = AuditRecord.objects.get(action=AuditAction.USER_SUSPENDED)
    assert (record.actor_id, record.target_type, record.target_id) == (admin_user.pk, "user", str(target.pk))
    assert record.data == {"reason": "fraud report #7", "old_status": "active", "new_status": "suspended"}


def test_reinstate_clears_failed_pin_attempts_and_reports_refusals(superuser_client):
    suspended = UserFactory(status=User.Status.SUSPENDED)
    User.objects.filter(pk=suspended.pk).update(failed_pin_attempts=3)
    active = UserFactory()
    response = action_post(
        superuser_client, URL, "reinstate_users", [suspended.pk, active.pk], confirm="yes", reason="verified by phone"
    )
    assert response.status_code == 302
    suspended.refresh_from_db()
    assert (suspended.status, suspended.failed_pin_attempts) == ("active", 0)
    messages = [str(message) for message in response.wsgi_request._messages]
    assert messages == [
        f"Reinstate: {suspended.email}.",
        f"Reinstate refused for {active.email}: The user is already active.",
    ]
    assert AuditRecord.objects.filter(action=AuditAction.USER_REINSTATED).count() == 1


def test_change_page_hides_hashes_and_status_is_read_only(superuser_client):
    target = UserFactory(full_name="Old Name")
    url = reverse("admin:accounts_user_change", args=[target.pk])
    page = superuser_client.get(url).content.decode()
    assert "pin_hash" not in page
    assert 'name="password"' not in page
    assert 'name="status"' not in page
    password_before = User.objects.get(pk=target.pk).password
    response = superuser_client.post(
        url,
        {
            "email": target.email, "full_name": "New Name", "role": "user", "is_active": "on",
            "status": "suspended", "password": "x", "pin_hash": "x", "failed_pin_attempts": "9",
        },
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert (target.full_name, target.status, target.password, target.pin_hash, target.failed_pin_attempts) == (
        "New Name", "active", password_before, "", 0
    )
    record = AuditRecord.objects.get(action=AuditAction.ADMIN_CHANGE)
    assert record.data == {"changed": ["full_name"], "old": {"full_name": "Old Name"}, "new": {"full_name": "New Name"}}


def test_editing_a_user_keeps_a_suspension_and_password_changed_meanwhile(superuser_client, monkeypatch):
    """A third wrong PIN (or a password change) committed while an edit is saved is not undone by it."""
    target = UserFactory(full_name="Old Name")
    load = UserAdmin.get_object

    def load_then_changed_elsewhere(self, request, object_id, from_field=None):
        obj = load(self, request, object_id, from_field)
        if request.method == "POST":  # what another request commits while this edit is saved
            User.objects.filter(pk=obj.pk).update(status=User.Status.SUSPENDED, failed_pin_attempts=3, password="new")
        return obj

    monkeypatch.setattr(UserAdmin, "get_object", load_then_changed_elsewhere)
    url = reverse("admin:accounts_user_change", args=[target.pk])
    response = superuser_client.post(url, {"email": target.email, "full_name": "New Name", "role": "user", "is_active": "on"})
    assert response.status_code == 302
    target.refresh_from_db()
    assert (target.full_name, target.status, target.failed_pin_attempts, target.password) == (
        "New Name", "suspended", 3, "new"
    )


def test_users_cannot_be_added_or_deleted_in_the_admin(superuser_client):
    target = UserFactory()
    assert superuser_client.get(reverse("admin:accounts_user_add")).status_code == 403
    assert superuser_client.post(reverse("admin:accounts_user_delete", args=[target.pk]), {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=target.pk).exists()


# --- Who may edit what ------------------------------------------------------------------

EVERYTHING = {
    "email": "taken-over@example.net", "full_name": "New Name", "role": "admin", "is_staff": "on",
    "is_superuser": "on", "groups": [],  # filled in by the tests
}


def _support_user():
    """Staff with Django's change_user permission, as a support desk would be set up."""
    user = UserFactory(email="support@example.com", full_name="Support", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_user"), Permission.objects.get(codename="change_user")
    )
    return user


def _privileges(user: User) -> tuple:
    user.refresh_from_db()
    return (user.email, user.role, user.is_staff, user.is_superuser, user.is_active, sorted(user.groups.values_list("name", flat=True)))


@pytest.mark.parametrize("own", [True, False], ids=["own user", "another user"])
def test_staff_with_change_user_edits_only_the_full_name(client, own):
    support = _support_user()
    target = support if own else UserFactory(email="customer@example.com")
    before = _privileges(target)
    client.force_login(support)
    url = reverse("admin:accounts_user_change", args=[target.pk])
    page = client.get(url).content.decode()
    assert 'name="full_name"' in page
    for name in ("email", "role", "is_staff", "is_superuser", "is_active", "groups"):
        assert f'name="{name}"' not in page, name

    everything = {**EVERYTHING, "groups": list(Group.objects.values_list("pk", flat=True))}  # is_active left out: "off"
    response = client.post(url, everything)
    assert response.status_code == 302
    assert _privileges(target) == before
    target.refresh_from_db()
    assert target.full_name == "New Name"
    record = AuditRecord.objects.get(action=AuditAction.ADMIN_CHANGE)
    assert record.data["changed"] == ["full_name"]


def test_superuser_grants_privileges_to_others_but_not_email_or_active(superuser_client):
    target = UserFactory(email="analyst@example.com")
    compliance = Group.objects.get(name=GROUP_NAME)
    url = reverse("admin:accounts_user_change", args=[target.pk])
    response = superuser_client.post(url, {**EVERYTHING, "is_superuser": "", "groups": [compliance.pk]})
    assert response.status_code == 302
    assert _privileges(target) == ("analyst@example.com", "admin", True, False, True, [GROUP_NAME])
    record = AuditRecord.objects.get(action=AuditAction.ADMIN_CHANGE)
    assert record.data["changed"] == ["full_name", "role", "is_staff", "groups"]


def test_superuser_cannot_change_their_own_privileges(superuser_client, admin_user):
    before = _privileges(admin_user)
    url = reverse("admin:accounts_user_change", args=[admin_user.pk])
    page = superuser_client.get(url).content.decode()
    assert 'name="is_superuser"' not in page and 'name="role"' not in page and 'name="full_name"' in page
    response = superuser_client.post(url, {"full_name": "Renamed", "role": "user"})  # staff/superuser/active "off"
    assert response.status_code == 302
    assert _privileges(admin_user) == before


# --- Refresh tokens -----------------------------------------------------------------------


def test_only_a_superuser_edits_permission_groups(superuser_client):
    """Staff allowed to change groups could otherwise give their own group any permission."""
    group = Group.objects.create(name="Support desk")
    support = _support_user()
    support.groups.add(group)
    for codename in ("view_group", "change_group", "add_group", "delete_group"):
        support.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(support)
    url = reverse("admin:auth_group_change", args=[group.pk])
    assert client.get(url).status_code == 200  # may look
    every_permission = list(Permission.objects.values_list("pk", flat=True))
    assert client.post(url, {"name": "Support desk", "permissions": every_permission}).status_code == 403
    assert client.post(reverse("admin:auth_group_add"), {"name": "Mine"}).status_code == 403
    assert group.permissions.count() == 0 and not Group.objects.filter(name="Mine").exists()
    change_user = Permission.objects.get(codename="change_user")
    assert superuser_client.post(url, {"name": "Support desk", "permissions": [change_user.pk]}).status_code == 302
    assert list(group.permissions.all()) == [change_user]


def test_token_blacklist_is_not_in_the_admin_so_revocations_cannot_be_undone(superuser_client):
    """Deleting a BlacklistedToken row would make a revoked refresh token work again."""
    user = UserFactory()
    RefreshToken.for_user(user).blacklist()
    revoked = BlacklistedToken.objects.get()
    assert not admin.site.is_registered(OutstandingToken)
    assert not admin.site.is_registered(BlacklistedToken)
    assert "token_blacklist" not in superuser_client.get(reverse("admin:index")).content.decode()
    for path in (
        "/admin/token_blacklist/blacklistedtoken/",
        f"/admin/token_blacklist/blacklistedtoken/{revoked.pk}/delete/",
        "/admin/token_blacklist/outstandingtoken/add/",
    ):
        assert superuser_client.get(path).status_code == 404, path
    response = superuser_client.post(f"/admin/token_blacklist/blacklistedtoken/{revoked.pk}/delete/", {"post": "yes"})
    assert response.status_code == 404
    assert BlacklistedToken.objects.filter(pk=revoked.pk).exists()


def test_an_admin_cannot_suspend_themself_in_the_admin_and_a_suspended_one_sees_a_banner(client):
    from accounts.services import user_suspend
    from accounts.tests.factories import AdminFactory

    me, other = AdminFactory(is_superuser=True), AdminFactory()
    client.force_login(me)
    url = reverse("admin:accounts_user_changelist")
    response = client.post(
        url,
        {"action": "suspend_users", "_selected_action": [str(me.pk)], "index": "0", "confirm": "yes", "reason": "x"},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [f"Suspend refused for {me.email}: You cannot suspend yourself."]
    assert User.objects.get(pk=me.pk).status == "active"
    assert 'id="ledgerx-suspended-banner"' not in response.content.decode()
    user_suspend(actor=other, user=me, reason="under review")
    page = client.get(url).content.decode()
    assert 'id="ledgerx-suspended-banner"' in page and "You are suspended" in page
