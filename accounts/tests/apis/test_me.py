import bcrypt
import pytest

from accounts.models import User
from accounts.tests.conftest import audit_actions
from accounts.tests.factories import DEFAULT_PASSWORD

NEW_PASSWORD = "a-brand-new-passphrase-7"


def test_me_returns_the_profile(authed_client, user):
    response = authed_client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json() == {
        "id": str(user.pk),
        "email": user.email,
        "full_name": user.full_name,
        "role": "user",
        "status": "active",
        "pin_set": False,
    }


def test_password_change_revokes_every_refresh_token(api_client, user, login):
    other_session = login(user)
    tokens = login(user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    response = api_client.put(
        "/api/v1/me/password", {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}, format="json"
    )
    assert (response.status_code, response.content) == (204, b"")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    api_client.credentials()
    for refresh in (other_session["refresh"], tokens["refresh"]):
        refused = api_client.post("/api/v1/auth/refresh", {"refresh": refresh}, format="json")
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "token_invalid")
    assert login(user, NEW_PASSWORD)["access"]
    assert audit_actions(user.pk).count("auth.password_changed") == 1


def test_password_change_with_wrong_current_password_changes_nothing(authed_client, user):
    old_hash = User.objects.get(pk=user.pk).password
    response = authed_client.put(
        "/api/v1/me/password", {"current_password": "wrong-one-123", "new_password": NEW_PASSWORD}, format="json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_credentials")
    assert User.objects.get(pk=user.pk).password == old_hash
    assert "auth.password_changed" not in audit_actions()


def test_password_change_validates_the_new_password(authed_client, user):
    response = authed_client.put(
        "/api/v1/me/password", {"current_password": DEFAULT_PASSWORD, "new_password": "short"}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["new_password"]
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_pin_set_over_the_api(authed_client, user):
    response = authed_client.put("/api/v1/me/pin", {"pin": "482915", "password": DEFAULT_PASSWORD}, format="json")
    assert (response.status_code, response.content) == (204, b"")
    user.refresh_from_db()
    assert user.pin_set and not bcrypt.checkpw(b"482915", user.pin_hash.encode())
    assert authed_client.get("/api/v1/me").json()["pin_set"] is True


@pytest.mark.parametrize("pin", [2580, "２５８０", "25 80", "258", "2580000", None, True])
def test_malformed_pin_over_the_api_is_400(authed_client, user, pin):
    response = authed_client.put("/api/v1/me/pin", {"pin": pin, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["pin"]
    assert str(pin) not in response.content.decode()  # never echoed
    assert User.objects.get(pk=user.pk).pin_hash == ""


def test_weak_pin_over_the_api(authed_client, user):
    response = authed_client.put("/api/v1/me/pin", {"pin": "123456", "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "weak_pin",
            "message": "This PIN is too easy to guess; avoid repeated digits and runs like 1234.",
        }
    }
    assert User.objects.get(pk=user.pk).pin_hash == ""


def test_pin_set_with_wrong_password_is_401(authed_client, user):
    response = authed_client.put("/api/v1/me/pin", {"pin": "2580", "password": "wrong-password"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_credentials")
    assert "2580" not in response.content.decode()
    assert User.objects.get(pk=user.pk).pin_hash == ""
