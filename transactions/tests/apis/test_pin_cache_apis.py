"""The verified-PIN cache seen from the API: what a transfer costs, and Redis going away.

Counts calls instead of timing: ``bcrypt.checkpw``/``bcrypt.hashpw`` (PIN hashes,
and password hashes in production) and ``User.check_password`` (every password
check whatever the hasher; the suite uses a fast one).
"""

import contextlib
from unittest import mock

import bcrypt
import pytest

from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD
from transactions.tests.helpers import PIN, funded_account

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def counting_hashes():
    calls: list[str] = []
    originals = {"checkpw": bcrypt.checkpw, "hashpw": bcrypt.hashpw, "check_password": User.check_password}

    def spy(name):
        def call(*args, **kwargs):
            calls.append(name)
            return originals[name](*args, **kwargs)

        return call

    with (
        mock.patch.object(bcrypt, "checkpw", side_effect=spy("checkpw")),
        mock.patch.object(bcrypt, "hashpw", side_effect=spy("hashpw")),
        mock.patch.object(User, "check_password", autospec=True, side_effect=spy("check_password")),
    ):
        yield calls


def _transfer(client, source, destination, *, pin=PIN, key):
    return client.post(
        "/api/v1/transfers",
        {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 25, "pin": pin},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def _login(api_client, user) -> dict:
    response = api_client.post("/api/v1/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_after_one_pin_check_the_hot_path_runs_no_hash_at_all(api_client):
    source, destination = funded_account(), funded_account()
    tokens = _login(api_client, source.owner)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    with counting_hashes() as calls:
        assert _transfer(api_client, source, destination, key="cold").status_code == 201
    assert calls == ["checkpw"]  # the first transfer proves the PIN to bcrypt

    with counting_hashes() as calls:
        for n in range(3):
            assert _transfer(api_client, source, destination, key=f"warm-{n}").status_code == 201
        assert api_client.get("/api/v1/me").status_code == 200
        refreshed = api_client.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
        assert refreshed.status_code == 200
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
        assert _transfer(api_client, source, destination, key="after-refresh").status_code == 201
    assert calls == []
    source.refresh_from_db()
    assert source.posted == 10_000 - 5 * 25


@pytest.mark.redis
def test_redis_dying_turns_warm_transfers_back_into_bcrypt_checks(client_for, private_redis):
    source, destination = funded_account(), funded_account()
    client = client_for(source.owner)
    assert _transfer(client, source, destination, key="cold").status_code == 201
    with counting_hashes() as calls:
        assert _transfer(client, source, destination, key="warm").status_code == 201
    assert calls == []

    private_redis.terminate()
    private_redis.wait(timeout=10)

    with counting_hashes() as calls:
        assert _transfer(client, source, destination, key="redis-down").status_code == 201
        wrong = _transfer(client, source, destination, pin="9173", key="redis-down-wrong")
    assert calls == ["checkpw", "checkpw"]
    assert wrong.status_code == 403
    assert wrong.json() == {
        "error": {"code": "invalid_pin", "message": wrong.json()["error"]["message"], "attempts_remaining": 2}
    }
    source.refresh_from_db()
    assert source.posted == 10_000 - 3 * 25
    assert User.objects.get(pk=source.owner_id).failed_pin_attempts == 1


@pytest.mark.postgres
def test_a_warm_transfer_is_the_token_user_read_and_the_movement_call(api_client):
    """Nothing else reaches the database: the accounts are known to the process, the
    PIN fields come from the row the token authentication read, and a PIN proven from
    the cache needs no key probe before it (the movement claims the key first)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    source, destination = funded_account(), funded_account()
    tokens = _login(api_client, source.owner)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert _transfer(api_client, source, destination, key="cold").status_code == 201
    with CaptureQueriesContext(connection) as queries:
        assert _transfer(api_client, source, destination, key="warm").status_code == 201
    # The test's own transaction turns the movement's commit into a savepoint pair.
    statements = [query["sql"] for query in queries.captured_queries if "SAVEPOINT" not in query["sql"]]
    assert len(statements) == 2, statements
    assert 'FROM "accounts_user"' in statements[0]
    assert "ledgerx_movement_create" in statements[1]
    source.refresh_from_db()
    assert source.posted == 10_000 - 2 * 25


def test_a_retry_with_a_pin_proven_from_the_cache_replays_and_a_changed_body_is_refused(api_client):
    source, destination = funded_account(), funded_account()
    tokens = _login(api_client, source.owner)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert _transfer(api_client, source, destination, key="first").status_code == 201  # proves the PIN
    first = _transfer(api_client, source, destination, key="k")
    again = _transfer(api_client, source, destination, key="k")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    changed = api_client.post(
        "/api/v1/transfers",
        {"source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 26, "pin": PIN},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert changed.status_code == 422 and changed.json()["error"]["code"] == "idempotency_key_reused"
    User.objects.filter(pk=source.owner.pk).update(status=User.Status.SUSPENDED)
    after_suspension = _transfer(api_client, source, destination, key="k")
    assert after_suspension.status_code == 201 and after_suspension["Idempotent-Replayed"] == "true"
    refused = _transfer(api_client, source, destination, key="new")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "user_suspended"
    source.refresh_from_db()
    assert source.posted == 10_000 - 2 * 25
