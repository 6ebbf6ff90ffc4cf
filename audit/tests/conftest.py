import pytest

from accounts.tests.factories import AdminFactory, UserFactory


@pytest.fixture
def admin_user(db):
    return AdminFactory(email="ops@example.com")


@pytest.fixture
def plain_user(db):
    return UserFactory(email="plain@example.com")


@pytest.fixture
def admin_api(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    return api_client


@pytest.fixture
def user_api(api_client, plain_user):
    api_client.force_authenticate(plain_user)
    return api_client
