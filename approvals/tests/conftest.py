import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import AdminFactory


@pytest.fixture
def requester(db):
    return AdminFactory(email="maker@example.com")


@pytest.fixture
def approver(db):
    return AdminFactory(email="checker@example.com")


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def requester_api(requester):
    return _client(requester)


@pytest.fixture
def approver_api(approver):
    return _client(approver)
