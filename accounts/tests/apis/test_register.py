import pytest

from accounts.models import User
from accounts.tests.conftest import audit_actions
from accounts.tests.factories import UserFactory

URL = "/api/v1/auth/register"
GOOD = {"email": "Ada@Example.com", "password": "a-long-unusual-passphrase", "full_name": "Ada Lovelace"}


def test_register_returns_the_user_and_audits(api_client, db):
    response = api_client.post(URL, GOOD, format="json")
    assert response.status_code == 201
    user = User.objects.get()
    assert response.json() == {
        "id": str(user.pk),
        "email": "ada@example.com",
        "full_name": "Ada Lovelace",
        "role": "user",
        "status": "active",
        "pin_set": False,
    }
    assert user.check_password(GOOD["password"])
    assert audit_actions(user.pk) == ["user.registered"]


def test_email_is_unique_case_insensitively(api_client, db):
    UserFactory(email="ada@example.com")
    response = api_client.post(URL, {**GOOD, "email": "ADA@example.COM"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"error": {"code": "email_taken", "message": "A user with this email already exists."}}
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "password, fragment",
    [("short-1", "too short"), ("password123", "too common"), ("12345678901234", "entirely numeric")],
)
def test_passwords_go_through_django_validators(api_client, db, password, fragment):
    response = api_client.post(URL, {**GOOD, "password": password}, format="json")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert any(fragment in message for message in body["fields"]["password"])
    assert User.objects.count() == 0
    assert audit_actions() == []


@pytest.mark.parametrize(
    "payload, field",
    [
        ({**GOOD, "email": "not-an-email"}, "email"),
        ({**GOOD, "full_name": ""}, "full_name"),
        ({**GOOD, "password": 1234567890123}, "password"),
        ({"email": GOOD["email"], "password": GOOD["password"]}, "full_name"),
    ],
)
def test_bad_fields_are_400_with_fields(api_client, db, payload, field):
    response = api_client.post(URL, payload, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert User.objects.count() == 0


def test_malformed_json_is_a_validation_error(api_client, db):
    response = api_client.post(URL, '{"email": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
