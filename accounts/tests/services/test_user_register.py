import pytest

from accounts import services
from accounts.exceptions import EmailTaken
from accounts.models import User
from accounts.tests.conftest import audit_actions
from ledgerx.exceptions import ValidationFailed


def test_register_lowercases_the_email_and_audits(db):
    user = services.user_register(email=" Ada@Example.COM ", password="a-long-unusual-passphrase", full_name=" Ada ")
    assert (user.email, user.full_name, user.role, user.status) == ("ada@example.com", "Ada", "user", "active")
    assert audit_actions(user.pk) == ["user.registered"]


def test_duplicate_email_is_email_taken(db):
    services.user_register(email="ada@example.com", password="a-long-unusual-passphrase", full_name="Ada")
    with pytest.raises(EmailTaken):
        services.user_register(email="ADA@example.com", password="another-long-passphrase", full_name="Eve")
    assert User.objects.count() == 1


def test_password_similar_to_the_email_is_refused(db):
    with pytest.raises(ValidationFailed) as excinfo:
        services.user_register(email="ada.lovelace@example.com", password="ada.lovelace", full_name="Ada")
    assert list(excinfo.value.fields) == ["password"]
    assert User.objects.count() == 0
