"""A database that refuses or drops connections answers 503 with Retry-After, never 500.

The fault is injected where a real outage shows itself: the driver raising its
own ``OperationalError`` when a cursor is made (a server gone, a connection
reset), which Django wraps exactly as it wraps the real thing. On both
databases.
"""

import logging
import sqlite3
from unittest import mock

import pytest
from django.db import connection
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from ledgerx.api import errors


def _driver_error():
    if connection.vendor == "postgresql":
        import psycopg

        return psycopg.OperationalError("server closed the connection unexpectedly")
    return sqlite3.OperationalError("unable to open database file")


@pytest.fixture
def database_down():
    """While active, every new cursor fails as it does when the server is gone."""
    with (
        mock.patch.object(errors, "database_outage_log", errors._BurstLog()),  # a fresh burst per test
        mock.patch.object(connection, "create_cursor", side_effect=_driver_error()),
    ):
        yield


def _assert_503(response):
    assert response.status_code == 503
    assert response.json() == {
        "error": {"code": "service_unavailable", "message": "The database is unavailable; try again shortly."}
    }
    assert response["Retry-After"] == "2"


@pytest.mark.django_db
def test_an_authenticated_request_answers_503_with_retry_after(api_client):
    user = UserFactory()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    assert api_client.get("/api/v1/me").status_code == 200
    with mock.patch.object(connection, "create_cursor", side_effect=_driver_error()):
        _assert_503(api_client.get("/api/v1/me"))


@pytest.mark.django_db
def test_login_and_register_answer_503_with_retry_after(api_client, database_down):
    _assert_503(api_client.post("/api/v1/auth/login", {"email": "a@example.com", "password": DEFAULT_PASSWORD}, format="json"))
    _assert_503(
        api_client.post(
            "/api/v1/auth/register",
            {"email": "b@example.com", "password": DEFAULT_PASSWORD, "full_name": "B"},
            format="json",
        )
    )


@pytest.mark.django_db
def test_a_money_movement_answers_503_and_its_key_stays_free(api_client):
    user = UserFactory()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    account = api_client.post("/api/v1/accounts", {"currency": "USD"}, format="json").json()["id"]
    body = {"account": account, "amount": 500}
    with mock.patch.object(connection, "create_cursor", side_effect=_driver_error()):
        _assert_503(api_client.post("/api/v1/deposits", body, format="json", HTTP_IDEMPOTENCY_KEY="outage-1"))
    retried = api_client.post("/api/v1/deposits", body, format="json", HTTP_IDEMPOTENCY_KEY="outage-1")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert api_client.get(f"/api/v1/accounts/{account}").json()["balance"]["posted"] == 500


@pytest.mark.django_db
def test_an_outage_is_logged_once_per_burst_without_500s(api_client, database_down, caplog):
    with caplog.at_level(logging.INFO, logger="ledgerx.errors"):
        for _ in range(5):
            _assert_503(api_client.post("/api/v1/auth/login", {"email": "a@example.com", "password": "x"}, format="json"))
    errors_logged = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in errors_logged] == [
        "database unavailable: answering 503 (0 more since the last report)"
    ]
    assert errors_logged[0].exc_info is not None


@pytest.mark.django_db
def test_readyz_is_503_while_the_database_is_down_and_200_after(client, settings):
    settings.REDIS_URL = ""
    with mock.patch.object(connection, "create_cursor", side_effect=_driver_error()):
        down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"] == {"database": "down", "cache": "ok"}
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_an_outage_outside_a_view_still_answers_503(client, database_down):
    """A failure in a middleware (before any view) reaches Django's handler500."""
    with mock.patch("ledgerx.api.middleware.client_ip", side_effect=errors.OperationalError("gone")):
        client.raise_request_exception = False
        _assert_503(client.get("/api/v1/me"))
