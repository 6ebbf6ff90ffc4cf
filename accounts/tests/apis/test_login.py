from unittest import mock

from accounts import services
from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from audit.models import AuditRecord

URL = "/api/v1/auth/login"
INVALID = {"error": {"code": "invalid_credentials", "message": "The email or password is incorrect."}}


def test_login_returns_a_pair_that_authenticates(api_client, user):
    response = api_client.post(URL, {"email": user.email.upper(), "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api_client.get("/api/v1/me").json()["id"] == str(user.pk)
    record = AuditRecord.objects.get()
    assert (record.action, record.actor_id, record.target_id) == ("auth.login_succeeded", user.pk, str(user.pk))


def test_wrong_password_and_unknown_email_answer_the_same(api_client, user):
    wrong = api_client.post(URL, {"email": user.email, "password": "wrong-password-1"}, format="json")
    unknown = api_client.post(URL, {"email": "nobody@example.com", "password": "wrong-password-1"}, format="json")
    assert (wrong.status_code, wrong.json()) == (401, INVALID)
    assert (unknown.status_code, unknown.json()) == (401, INVALID)
    records = list(AuditRecord.objects.order_by("at"))
    assert [(r.action, r.target_type, r.target_id, r.actor_id) for r in records] == [
        ("auth.login_failed", "email", user.email, user.pk),
        ("auth.login_failed", "email", "nobody@example.com", None),
    ]
    for record in records:
        assert "wrong-password-1" not in str(record.data)


def test_unknown_email_still_hashes_the_password(api_client, db):
    """Comparable time: the unknown-email path runs one password hash too."""
    with mock.patch.object(services, "make_password", wraps=services.make_password) as dummy_hash:
        response = api_client.post(URL, {"email": "nobody@example.com", "password": "x-password-9"}, format="json")
    assert response.status_code == 401
    dummy_hash.assert_called_once_with("x-password-9")


def test_suspended_users_can_log_in_and_read(api_client, db):
    user = UserFactory(status=User.Status.SUSPENDED)
    response = api_client.post(URL, {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert api_client.get("/api/v1/me").json()["status"] == "suspended"


def test_deactivated_user_cannot_log_in(api_client, db):
    user = UserFactory(is_active=False)
    response = api_client.post(URL, {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert (response.status_code, response.json()) == (401, INVALID)


def test_missing_fields_are_400(api_client, db):
    response = api_client.post(URL, {"email": "a@example.com"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"password": ["This field is required."]}
