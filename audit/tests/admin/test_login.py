"""The admin site's login goes through the API's login service: rate limits, audit, one answer for unknown and wrong."""

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from accounts.tests.factories import DEFAULT_PASSWORD, AdminFactory, UserFactory
from audit.models import AuditAction, AuditRecord

pytestmark = pytest.mark.django_db
LOGIN = reverse("admin:login")


def _login(client, email, password):
    return client.post(LOGIN, {"username": email, "password": password, "next": "/admin/"})


def test_a_good_admin_login_is_audited_and_a_logout_too():
    staff = AdminFactory(email="ops2@example.com")
    client = Client()
    response = _login(client, "OPS2@example.com", DEFAULT_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    record = AuditRecord.objects.get(action=AuditAction.LOGIN_SUCCEEDED)
    assert (record.actor_id, record.target_id, record.data) == (staff.pk, str(staff.pk), {"via": "admin"})
    assert client.post(reverse("admin:logout")).status_code == 200
    logout = AuditRecord.objects.get(action=AuditAction.LOGOUT)
    assert (logout.actor_id, logout.data) == (staff.pk, {"via": "admin"})
    assert client.get("/admin/").status_code == 302  # logged out


def test_unknown_email_and_wrong_password_get_the_same_page_and_are_audited():
    AdminFactory(email="ops3@example.com")
    client = Client()
    wrong = _login(client, "ops3@example.com", "not-the-password")
    unknown = _login(client, "nobody@example.com", "not-the-password")
    assert wrong.status_code == unknown.status_code == 200
    assert wrong.context["form"].errors == unknown.context["form"].errors
    failed = AuditRecord.objects.filter(action=AuditAction.LOGIN_FAILED).order_by("at")
    assert [(r.data["email"], r.data["known_user"], r.data["via"]) for r in failed] == [
        ("ops3@example.com", True, "admin"),
        ("nobody@example.com", False, "admin"),
    ]


def test_a_customer_with_the_right_password_cannot_log_in_to_the_admin():
    customer = UserFactory(email="cust@example.com")
    response = _login(Client(), customer.email, DEFAULT_PASSWORD)
    assert response.status_code == 200
    assert "_auth_user_id" not in response.wsgi_request.session
    record = AuditRecord.objects.get(action=AuditAction.LOGIN_FAILED)
    assert record.data["reason"] == "not_staff"
    assert not AuditRecord.objects.filter(action=AuditAction.LOGIN_SUCCEEDED).exists()


@override_settings(AUTH_RATE="3/m", RATELIMIT_ENABLE=True)
def test_guessing_a_password_is_rate_limited_per_email_then_even_the_right_one_is_refused():
    AdminFactory(email="target@example.com")
    for number in range(3):
        client = Client(REMOTE_ADDR=f"10.0.0.{number + 1}")  # a fresh IP each time: the email's limit bites
        assert _login(client, "target@example.com", "guess").status_code == 200
    blocked = _login(Client(REMOTE_ADDR="10.0.0.9"), "target@example.com", DEFAULT_PASSWORD)
    assert blocked.status_code == 200
    assert "Too many" in str(blocked.context["form"].errors) or "try again" in str(blocked.context["form"].errors).lower()
    assert "_auth_user_id" not in blocked.wsgi_request.session
    assert AuditRecord.objects.filter(action=AuditAction.LOGIN_FAILED).count() == 3  # the 4th never checked a password


@override_settings(AUTH_RATE="3/m", RATELIMIT_ENABLE=True)
def test_admin_logins_are_limited_per_ip_too():
    client = Client(REMOTE_ADDR="10.1.1.1")
    for number in range(3):
        _login(client, f"someone{number}@example.com", "guess")
    blocked = _login(client, "someone-else@example.com", "guess")
    assert "_auth_user_id" not in blocked.wsgi_request.session
    assert AuditRecord.objects.filter(action=AuditAction.LOGIN_FAILED).count() == 3


def test_admin_sessions_expire_when_idle_and_at_browser_close(settings):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
