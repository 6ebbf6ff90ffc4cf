"""Fixtures shared by the ledger and transactions API tests (imported by their conftests)."""

import pytest


@pytest.fixture
def client_for(api_client):
    """An API client authenticated as the given user."""

    def login(user):
        api_client.force_authenticate(user)
        return api_client

    return login
