"""Suite-wide fixtures and the PostgreSQL gate.

Tests marked ``postgres`` (locking, triggers, races) are skipped on SQLite, but
with LEDGERX_REQUIRE_POSTGRES=1 (set by .ci/run) running them anywhere else is an
error: CI can never go green by skipping them.
"""

import os

import pytest
from django.conf import settings
from rest_framework.test import APIClient


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
