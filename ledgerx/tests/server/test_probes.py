"""The probe listener's answers, in process: the same probes as the main port, on a port workers share."""

import threading
from unittest import mock

import pytest
import requests

from ledgerx.server.probes import parse_bind, start_probe_listener
from ledgerx.tests.observability.conftest import free_port


@pytest.fixture
def listeners():
    started = []

    def start(bind):
        server = start_probe_listener(bind)
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()  # returns once serve_forever has, before its thread closed its connection
        server.server_close()
    for thread in threading.enumerate():
        if thread.name == "ledgerx-probes":
            thread.join(timeout=10)


@pytest.mark.postgres  # the probe thread opens its own connection: SQLite's in-memory test database is per thread
@pytest.mark.django_db(transaction=True)
def test_the_probe_port_answers_like_the_main_port(listeners, client):
    port = free_port()
    listeners(f"127.0.0.1:{port}")
    listeners(f"127.0.0.1:{port}")  # a second worker binds the same port (SO_REUSEPORT)
    base = f"http://127.0.0.1:{port}"

    healthz = requests.get(f"{base}/healthz", timeout=5)
    assert (healthz.status_code, healthz.json(), healthz.headers["Cache-Control"]) == (200, {"status": "ok"}, "no-store")
    assert requests.get(f"{base}/readyz", timeout=5).json() == client.get("/readyz").json()
    missing = requests.get(f"{base}/admin/", timeout=5)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


def test_the_probe_ports_503_carries_retry_after(listeners):
    port = free_port()
    listeners(f"127.0.0.1:{port}")
    with mock.patch("ledgerx.api.health._database_ok", return_value=False), mock.patch("ledgerx.api.health._cache_ok", return_value=True):
        response = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
    assert response.json()["checks"]["database"] == "down"
    assert response.json()["error"]["code"] == "service_unavailable"


def test_bind_addresses():
    assert parse_bind("0.0.0.0:8001") == ("0.0.0.0", 8001)
    assert parse_bind(":8001") == ("0.0.0.0", 8001)
    assert parse_bind("[::1]:8001") == ("::1", 8001)
