import bcrypt
import pytest
from django.test import override_settings

from accounts import services
from accounts.exceptions import InvalidCredentials, WeakPin
from accounts.models import User
from accounts.tests.conftest import audit_actions
from accounts.tests.factories import DEFAULT_PASSWORD
from ledgerx.exceptions import ValidationFailed


def test_pin_set_stores_peppered_bcrypt_and_audits_without_the_pin(user):
    user.failed_pin_attempts = 2
    user.save(update_fields=["failed_pin_attempts"])

    services.pin_set(user=user, pin="2580", password=DEFAULT_PASSWORD)

    user.refresh_from_db()
    assert user.pin_set is True
    assert user.failed_pin_attempts == 0
    assert user.pin_hash.startswith("$2b$04$")  # test cost
    assert "2580" not in user.pin_hash
    assert bcrypt.checkpw(b"2580", user.pin_hash.encode()) is False  # peppered
    assert audit_actions(user.pk) == ["pin.set"]
    from audit.models import AuditRecord

    assert "2580" not in str(AuditRecord.objects.get(action="pin.set").data)


@override_settings(PIN_BCRYPT_ROUNDS=12)
def test_pin_hash_uses_cost_12_in_production_settings(user):
    services.pin_set(user=user, pin="739146", password=DEFAULT_PASSWORD)
    user.refresh_from_db()
    assert user.pin_hash.startswith("$2b$12$")
    assert bcrypt.checkpw(b"739146", user.pin_hash.encode()) is False
    services.pin_verify(user=user, pin="739146")  # still verifies through the pepper


def test_pin_hash_depends_on_the_pepper(user_with_pin):
    services.pin_verify(user=user_with_pin, pin="2580")
    with override_settings(PIN_PEPPER="another-pepper"):
        with pytest.raises(Exception) as excinfo:
            services.pin_verify(user=user_with_pin, pin="2580")
    assert excinfo.value.code == "invalid_pin"


def test_wrong_password_changes_nothing(user):
    with pytest.raises(InvalidCredentials):
        services.pin_set(user=user, pin="2580", password="not-the-password")
    user.refresh_from_db()
    assert user.pin_hash == ""
    assert audit_actions() == []


@pytest.mark.parametrize(
    "pin", ["123", "1234567", "12a4", "１２３４", "٣٤٥٦", " 2580", "2580\n", "", 2580, None, 25.80]
)
def test_malformed_pins_are_validation_errors(user, pin):
    with pytest.raises(ValidationFailed) as excinfo:
        services.pin_set(user=user, pin=pin, password=DEFAULT_PASSWORD)
    assert list(excinfo.value.fields) == ["pin"]
    assert User.objects.get(pk=user.pk).pin_hash == ""


@pytest.mark.parametrize("pin", ["0000", "1111", "999999", "1234", "123456", "4321", "987654", "3456", "56789"])
def test_weak_pins_are_refused(user, pin):
    with pytest.raises(WeakPin):
        services.pin_set(user=user, pin=pin, password=DEFAULT_PASSWORD)
    assert User.objects.get(pk=user.pk).pin_hash == ""
    assert audit_actions() == []


@pytest.mark.parametrize("pin", ["2580", "1357", "1235", "0912", "482915"])
def test_ordinary_pins_are_accepted(user, pin):
    services.pin_set(user=user, pin=pin, password=DEFAULT_PASSWORD)
    services.pin_verify(user=user, pin=pin)
