import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from accounts.tests.factories import UserFactory
from audit.models import AuditAction, AuditRecord

pytestmark = pytest.mark.django_db


def test_reinstate_user_lifts_a_suspension_and_audits_it(capsys):
    user = UserFactory(email="locked@example.com", status=User.Status.SUSPENDED, failed_pin_attempts=3)
    call_command("reinstate_user", "LOCKED@example.com", "--reason", "only admin suspended by mistake")
    user.refresh_from_db()
    assert (user.status, user.failed_pin_attempts) == ("active", 0)
    assert capsys.readouterr().out == "Reinstated locked@example.com.\n"
    record = AuditRecord.objects.get(action=AuditAction.USER_REINSTATED)
    assert record.actor_id is None and record.target_id == str(user.pk)
    assert record.data == {
        "reason": "only admin suspended by mistake (via reinstate_user)",
        "old_status": "suspended",
        "new_status": "active",
    }


def test_reinstate_user_refuses_blank_reasons_unknown_emails_and_active_users():
    active = UserFactory(email="fine@example.com")
    with pytest.raises(CommandError, match="No user with the email nobody@example.com."):
        call_command("reinstate_user", "nobody@example.com", "--reason", "x")
    with pytest.raises(CommandError, match="Reinstate refused for fine@example.com: The user is already active."):
        call_command("reinstate_user", active.email, "--reason", "x")
    suspended = UserFactory(status=User.Status.SUSPENDED)
    with pytest.raises(CommandError, match="Reinstate refused"):
        call_command("reinstate_user", suspended.email, "--reason", "  ")
    assert User.objects.get(pk=suspended.pk).status == "suspended"
    assert not AuditRecord.objects.filter(action=AuditAction.USER_REINSTATED).exists()
