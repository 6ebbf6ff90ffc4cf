import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.exceptions import InvalidCredentials
from accounts.tests.factories import DEFAULT_PASSWORD
from audit.models import AuditRecord
from ledgerx.exceptions import ValidationFailed


def test_password_change_revokes_all_outstanding_refresh_tokens(user):
    for _ in range(3):
        RefreshToken.for_user(user)
    services.password_change(user=user, current_password=DEFAULT_PASSWORD, new_password="a-fresh-passphrase-1")
    user.refresh_from_db()
    assert user.check_password("a-fresh-passphrase-1")
    assert BlacklistedToken.objects.filter(token__user=user).count() == 3
    record = AuditRecord.objects.get(action="auth.password_changed")
    assert record.data == {"refresh_tokens_revoked": 3}
    assert "a-fresh-passphrase-1" not in str(record.data)


@pytest.mark.parametrize(
    "current, new, error",
    [("wrong-password-0", "a-fresh-passphrase-1", InvalidCredentials), (DEFAULT_PASSWORD, "abc", ValidationFailed)],
)
def test_failed_change_keeps_password_and_tokens(user, current, new, error):
    RefreshToken.for_user(user)
    with pytest.raises(error):
        services.password_change(user=user, current_password=current, new_password=new)
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    assert BlacklistedToken.objects.count() == 0
    assert AuditRecord.objects.count() == 0
