import pytest

from accounts.tests.factories import AdminFactory
from audit.models import AuditAction, AuditRecord
from ledger.services.customer_accounts import account_freeze, account_unfreeze
from ledger.tests.factories import customer_account
from ledgerx.exceptions import InvalidState, ValidationFailed

pytestmark = pytest.mark.django_db


def test_freeze_then_unfreeze_is_audited():
    admin = AdminFactory()
    account = customer_account()
    account_freeze(actor=admin, account=account, reason="  suspicious activity ")
    account.refresh_from_db()
    assert account.status == "frozen" and account.version == 1
    account_unfreeze(actor=admin, account=account, reason="cleared")
    account.refresh_from_db()
    assert account.status == "active" and account.version == 2
    frozen = AuditRecord.objects.get(action=AuditAction.ACCOUNT_FROZEN)
    assert (frozen.actor_id, frozen.target_id, frozen.data) == (
        admin.pk,
        str(account.pk),
        {"reason": "suspicious activity", "old_status": "active", "new_status": "frozen"},
    )
    unfrozen = AuditRecord.objects.get(action=AuditAction.ACCOUNT_UNFROZEN)
    assert unfrozen.data == {"reason": "cleared", "old_status": "frozen", "new_status": "active"}


def test_freezing_twice_or_unfreezing_active_is_invalid_state():
    admin = AdminFactory()
    account = customer_account()
    with pytest.raises(InvalidState):
        account_unfreeze(actor=admin, account=account, reason="x")
    account_freeze(actor=admin, account=account, reason="x")
    with pytest.raises(InvalidState):
        account_freeze(actor=admin, account=account, reason="x")
    account.refresh_from_db()
    assert account.status == "frozen"
    assert AuditRecord.objects.filter(action__in=[AuditAction.ACCOUNT_FROZEN, AuditAction.ACCOUNT_UNFROZEN]).count() == 1


@pytest.mark.parametrize("reason", ["", "  ", None])
def test_reason_required(reason):
    account = customer_account()
    with pytest.raises(ValidationFailed):
        account_freeze(actor=AdminFactory(), account=account, reason=reason)
    account.refresh_from_db()
    assert account.status == "active"
