"""Every 503 LedgerX answers tells the client when to come back (``Retry-After``).

One test per place that answers 503: the rate limiter with its cache down
(identity endpoints fail closed), a database outage in the API and on an admin
page, and the readiness probe with either dependency down.
"""

import socket
import sqlite3
from unittest import mock

import pytest
from django.db import connection
from django.test import override_settings

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from ledgerx.api import errors
from ledgerx.context import client_ip_var, request_id_var


def _cache_down():
    """The default cache pointed at a port nobody listens on: Redis gone."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    location = f"redis://127.0.0.1:{port}/0"
    options = {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}
    return override_settings(CACHES={"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location, "OPTIONS": options}})


def _driver_error():
    if connection.vendor == "postgresql":
        import psycopg

        return psycopg.OperationalError("server closed the connection unexpectedly")
    return sqlite3.OperationalError("unable to open database file")


def _assert_retry_after(response):
    assert response.status_code == 503
    assert response["Retry-After"] == str(errors.OUTAGE_RETRY_AFTER)


@pytest.mark.django_db
def test_login_with_the_rate_limiter_down(api_client):
    with _cache_down():
        response = api_client.post("/api/v1/auth/login", {"email": "a@example.com", "password": DEFAULT_PASSWORD}, format="json")
    _assert_retry_after(response)
    assert response.json()["error"]["code"] == "service_unavailable"


@pytest.mark.django_db
def test_an_api_request_with_the_database_down(api_client):
    with mock.patch.object(connection, "create_cursor", side_effect=_driver_error()):
        response = api_client.post("/api/v1/auth/login", {"email": "a@example.com", "password": "x"}, format="json")
    _assert_retry_after(response)


@pytest.mark.django_db
def test_an_admin_page_with_the_database_down(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    client.raise_request_exception = False
    with mock.patch.object(connection, "create_cursor", side_effect=_driver_error()):
        response = client.get("/admin/")
    _assert_retry_after(response)
    # The access log's look at the session user failed too; the request's context still ended with it.
    assert (client_ip_var.get(), request_id_var.get()) == (None, None)


@pytest.mark.django_db
def test_readyz_with_the_database_down(client, settings):
    settings.REDIS_URL = ""
    with mock.patch.object(connection, "create_cursor", side_effect=_driver_error()):
        response = client.get("/readyz")
    _assert_retry_after(response)
    assert response.json()["checks"]["database"] == "down"


@pytest.mark.django_db
def test_readyz_with_redis_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with mock.patch("ledgerx.api.health._cache_ok", return_value=False):
        response = client.get("/readyz")
    _assert_retry_after(response)
    assert response.json()["checks"]["cache"] == "down"


def test_a_service_unavailable_error_renders_retry_after():
    from ledgerx.exceptions import ServiceUnavailable

    response = errors.render_exception(ServiceUnavailable("The rate limiter is unavailable; try again shortly."))
    _assert_retry_after(response)
