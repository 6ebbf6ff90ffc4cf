"""A real Redis that dies mid-run: identity endpoints refuse (503), reads go on.

Uses a private redis-server on a free port in 6390-6399 and stops only that one.
"""

import shutil
import socket
import subprocess
import time

import pytest
import redis
from django.test import override_settings

from accounts.tests.factories import DEFAULT_PASSWORD

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


def _free_port() -> int:
    for port in range(6390, 6400):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    pytest.skip("no free port in 6390-6399 for a private redis-server")


@pytest.fixture
def private_redis():
    port = _free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.3, "SOCKET_TIMEOUT": 0.3},
        }
    }
    try:
        with override_settings(CACHES=caches):
            yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def test_redis_dying_turns_login_into_503_but_me_keeps_working(api_client, user, private_redis):
    login = {"email": user.email, "password": DEFAULT_PASSWORD}
    response = api_client.post("/api/v1/auth/login", login, format="json")
    assert response.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert api_client.get("/api/v1/me").status_code == 200

    private_redis.terminate()
    private_redis.wait(timeout=10)

    api_client.credentials()
    refused = api_client.post("/api/v1/auth/login", login, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "service_unavailable")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    me = api_client.get("/api/v1/me")
    assert (me.status_code, me.json()["email"]) == (200, user.email)
