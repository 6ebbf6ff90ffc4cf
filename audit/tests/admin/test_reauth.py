"""Dangerous back-office actions re-ask the password once the session's last password check is old."""

import time

import pytest
from django.urls import reverse

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from audit.admin_reauth import PROOF_KEY
from audit.models import AuditAction, AuditRecord
from audit.tests.admin.conftest import action_post
from transactions.tests.helpers import funded_account

pytestmark = pytest.mark.django_db
URL = reverse("admin:ledger_ledgeraccount_changelist")


@pytest.fixture
def officer(client, settings):
    settings.ADMIN_REAUTH_SECONDS = 300
    user = UserFactory(email="officer@example.com", is_staff=True, is_superuser=True)
    client.force_login(user)  # a login is a password check
    return user


def _age_proof(client, seconds: float) -> None:
    session = client.session
    session[PROOF_KEY] = time.time() - seconds
    session.save()


def _freeze(client, account, **extra):
    return action_post(client, URL, "freeze_accounts", [account.pk], confirm="yes", reason="court order 7", **extra)


def test_right_after_login_the_reason_is_enough(client, officer):
    account = funded_account(amount=500)
    page = action_post(client, URL, "freeze_accounts", [account.pk])
    assert "password" not in page.context["form"].fields
    assert _freeze(client, account).status_code == 302
    account.refresh_from_db()
    assert account.status == "frozen"


def test_an_old_password_check_asks_again_and_nothing_happens_without_it(client, officer):
    account = funded_account(amount=500)
    _age_proof(client, 301)
    page = action_post(client, URL, "freeze_accounts", [account.pk])
    assert "password" in page.context["form"].fields
    assert 'type="password"' in page.content.decode()

    missing = _freeze(client, account)
    assert missing.status_code == 200
    assert missing.context["form"].errors == {"password": ["This field is required."]}
    wrong = _freeze(client, account, password="not my password")
    assert wrong.context["form"].errors == {"password": ["Wrong password."]}
    account.refresh_from_db()
    assert account.status == "active"
    failed = AuditRecord.objects.filter(action=AuditAction.LOGIN_FAILED).get()
    assert (failed.actor_id, failed.data["via"]) == (officer.pk, "admin_reauth")
    assert not AuditRecord.objects.filter(action=AuditAction.ACCOUNT_FROZEN).exists()


def test_the_right_password_runs_the_action_and_counts_as_a_fresh_check(client, officer):
    account, other = funded_account(amount=500), funded_account(amount=500)
    _age_proof(client, 3600)
    assert _freeze(client, account, password=DEFAULT_PASSWORD).status_code == 302
    account.refresh_from_db()
    assert account.status == "frozen"
    # The next action within the window needs no password.
    assert "password" not in action_post(client, URL, "freeze_accounts", [other.pk]).context["form"].fields
    assert _freeze(client, other).status_code == 302


def test_every_reason_action_is_guarded(client, officer):
    """Suspend (users), reverse (transactions) and the rest share the confirmation, so they share the check."""
    _age_proof(client, 301)
    target = UserFactory(email="target@example.com")
    response = action_post(client, reverse("admin:accounts_user_changelist"), "suspend_users", [target.pk], confirm="yes", reason="fraud")
    assert response.context["form"].errors == {"password": ["This field is required."]}
    target.refresh_from_db()
    assert target.status == "active"


def test_wrong_passwords_share_the_login_rate_limit(client, officer, settings):
    settings.AUTH_RATE = "2/m"
    account = funded_account(amount=500)
    _age_proof(client, 301)
    for _ in range(2):
        assert _freeze(client, account, password="wrong").context["form"].errors == {"password": ["Wrong password."]}
    limited = _freeze(client, account, password=DEFAULT_PASSWORD)
    assert limited.context["form"].errors["password"] == ["Too many requests."]
    account.refresh_from_db()
    assert account.status == "active"


def test_the_admin_login_form_records_the_check(client, settings):
    settings.ADMIN_REAUTH_SECONDS = 300
    user = UserFactory(email="desk@example.com", is_staff=True, is_superuser=True)
    response = client.post(reverse("admin:login"), {"username": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert time.time() - client.session[PROOF_KEY] < 60


def test_zero_seconds_asks_every_time(client, officer, settings):
    settings.ADMIN_REAUTH_SECONDS = 0
    account = funded_account(amount=500)
    assert "password" in action_post(client, URL, "freeze_accounts", [account.pk]).context["form"].fields
