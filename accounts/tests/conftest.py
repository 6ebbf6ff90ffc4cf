import pytest

from accounts import services
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from audit.models import AuditRecord

PIN = "2580"


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def user_with_pin(user):
    services.pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    return user


@pytest.fixture
def login(api_client):
    """login(user) -> {"access", "refresh"} through the API."""

    def _login(user, password=DEFAULT_PASSWORD):
        response = api_client.post(
            "/api/v1/auth/login", {"email": user.email, "password": password}, format="json"
        )
        assert response.status_code == 200, response.content
        return response.json()

    return _login


@pytest.fixture
def authed_client(api_client, user, login):
    tokens = login(user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return api_client


def audit_actions(target_id=None) -> list[str]:
    records = AuditRecord.objects.order_by("at")
    if target_id is not None:
        records = records.filter(target_id=str(target_id))
    return list(records.values_list("action", flat=True))
