"""Suite-wide fixtures and the PostgreSQL gate.

Tests marked ``postgres`` (locking, triggers, races) are skipped on SQLite, but
with LEDGERX_REQUIRE_POSTGRES=1 (set by .ci/run) running them anywhere else is an
error: CI can never go green by skipping them.
"""

import os

import pytest
from django.conf import settings
from django.db.backends.signals import connection_created
from rest_framework.test import APIClient


def _allow_test_flush(sender, connection, **kwargs):
    """Tests that commit are emptied with TRUNCATE, which the append-only tables refuse
    outside a test database whose session opts in (audit/0010)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET ledgerx.allow_truncate = 'on'")


connection_created.connect(_allow_test_flush, dispatch_uid="ledgerx_allow_test_flush")


def pytest_collection_modifyitems(config, items):
    if settings.IS_POSTGRES:
        return
    if os.environ.get("LEDGERX_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError("LEDGERX_REQUIRE_POSTGRES=1 but DATABASE_URL is not PostgreSQL")
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (rate-limit counters, balances, markers)."""
    from django.core.cache import cache

    try:
        cache.clear()
    except Exception:  # a test may have stopped Redis on purpose
        pass
    yield


@pytest.fixture
def api_client():
    return APIClient()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def private_redis():
    """A throwaway redis-server on a spare port 6390-6399, never the shared one.

    While the test runs, the default cache (and REDIS_URL, which the readiness
    probe reads) point at it; the test may kill the yielded process to simulate
    an outage.
    """
    import shutil
    import subprocess
    import time

    from django.test import override_settings

    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    for port in range(6390, 6400):
        if not _port_free(port):
            continue
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if not _port_free(port) or process.poll() is not None:
                break
            time.sleep(0.05)
        if process.poll() is None and not _port_free(port):
            break
        process.kill()
    else:
        pytest.skip("no free port in 6390-6399 for a private redis-server")
    url = f"redis://127.0.0.1:{port}/0"
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.3, "SOCKET_TIMEOUT": 0.3},
        }
    }
    try:
        with override_settings(CACHES=caches, REDIS_URL=url):
            yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
