import pytest

from accounts import services
from accounts.models import User
from accounts.tests.conftest import audit_actions
from accounts.tests.factories import AdminFactory
from audit.models import AuditRecord
from ledgerx.exceptions import InvalidState, ValidationFailed


def test_suspend_then_reinstate_clears_the_pin_counter(user):
    admin = AdminFactory()
    User.objects.filter(pk=user.pk).update(failed_pin_attempts=2)

    suspended = services.user_suspend(actor=admin, user=user, reason="fraud review")
    assert suspended.status == "suspended"
    reinstated = services.user_reinstate(actor=admin, user=user, reason="cleared")
    assert (reinstated.status, reinstated.failed_pin_attempts) == ("active", 0)

    user.refresh_from_db()
    assert (user.status, user.failed_pin_attempts) == ("active", 0)
    records = list(AuditRecord.objects.filter(target_id=str(user.pk)).order_by("at"))
    assert [(r.action, r.actor_id, r.data) for r in records] == [
        ("user.suspended", admin.pk, {"reason": "fraud review", "old_status": "active", "new_status": "suspended"}),
        ("user.reinstated", admin.pk, {"reason": "cleared", "old_status": "suspended", "new_status": "active"}),
    ]


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reason_is_required(user, reason):
    with pytest.raises(ValidationFailed) as excinfo:
        services.user_suspend(actor=AdminFactory(), user=user, reason=reason)
    assert excinfo.value.fields == {"reason": ["A non-empty reason is required."]}
    user.refresh_from_db()
    assert user.status == "active"
    assert audit_actions() == []


def test_suspending_twice_or_reinstating_an_active_user_is_invalid_state(user):
    admin = AdminFactory()
    with pytest.raises(InvalidState):
        services.user_reinstate(actor=admin, user=user, reason="x")
    services.user_suspend(actor=admin, user=user, reason="x")
    with pytest.raises(InvalidState):
        services.user_suspend(actor=admin, user=user, reason="again")
    user.refresh_from_db()
    assert user.status == "suspended"
    assert audit_actions(user.pk) == ["user.suspended"]
