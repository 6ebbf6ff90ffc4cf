"""Replica routing and read-your-writes, with the replicas' answers simulated.

The real topology (a streaming replica, PgBouncer, two app servers) is driven
by ``tests/cluster`` through ``scripts/cluster``; these pin the decisions.
"""

import json
import os
import subprocess
import sys
import time

import pytest
from django.contrib.sessions.models import Session
from django.db import DEFAULT_DB_ALIAS, OperationalError

from ledger.models import Posting
from ledger.tests.fixtures import client_for  # noqa: F401
from ledgerx.db import replicas
from ledgerx.db.router import PrimaryReplicaRouter
from transactions.tests.helpers import funded_account, new_key

ALIAS = "replica1"


@pytest.fixture
def one_replica(settings, monkeypatch):
    """settings name one replica whose probe answers ``state["now"]``; probes are counted."""
    settings.REPLICA_ALIASES = [ALIAS]
    settings.REPLICA_MAX_LAG = 2.0
    answers = {"now": replicas.ReplicaState(0, up=True, replay_lsn=100, lag=0.1), "probes": 0}

    def probe(alias):
        answers["probes"] += 1
        return replicas.ReplicaState(time.monotonic(), answers["now"].up, answers["now"].replay_lsn, answers["now"].lag)

    monkeypatch.setattr(replicas, "replica_probe", probe)
    monkeypatch.setattr(replicas, "_states", {})
    monkeypatch.setattr(replicas, "_local_lsns", {})
    return answers


def test_the_router_reads_from_a_replica_only_inside_a_replica_scope_and_writes_to_the_primary():
    router = PrimaryReplicaRouter()
    assert router.db_for_read(Posting) == DEFAULT_DB_ALIAS
    with replicas.reading_from(ALIAS):
        assert router.db_for_read(Posting) == ALIAS
        assert router.db_for_write(Posting) == DEFAULT_DB_ALIAS
        # Django's own tables (the admin's session) never leave the primary.
        assert router.db_for_read(Session) == DEFAULT_DB_ALIAS
    assert router.db_for_read(Posting) == DEFAULT_DB_ALIAS
    assert router.allow_migrate(ALIAS, "ledger") is False
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "ledger") is True


def test_a_user_without_recent_writes_reads_from_a_fit_replica(one_replica, settings):
    settings.REDIS_URL = ""
    assert replicas.replica_choose("u1") == ALIAS
    assert replicas.replica_choose(None) == ALIAS


def test_a_user_whose_write_the_replica_has_not_replayed_reads_from_the_primary(one_replica, settings):
    settings.REDIS_URL = ""
    replicas.lsn_remember("u1", 150)
    assert replicas.replica_choose("u1") is None
    # Not yet replayed: the cached position was re-read on the replica, not assumed.
    probes = one_replica["probes"]
    assert replicas.replica_choose("u1") is None
    assert one_replica["probes"] == probes + 1
    # Another user is not held back by u1's write.
    assert replicas.replica_choose("u2") == ALIAS
    one_replica["now"] = replicas.ReplicaState(0, up=True, replay_lsn=150, lag=0.1)
    assert replicas.replica_choose("u1") == ALIAS


def test_the_highest_position_is_kept_when_writes_finish_out_of_order(one_replica, settings):
    settings.REDIS_URL = ""
    replicas.lsn_remember("u1", 300)
    replicas.lsn_remember("u1", 200)
    assert replicas.lsn_required("u1") == 300


@pytest.mark.parametrize(
    "state",
    [
        replicas.ReplicaState(0, up=True, replay_lsn=10**9, lag=2.5),  # lagging
        replicas.ReplicaState(0, up=True, replay_lsn=10**9, lag=None),  # lag unknown
        replicas.ReplicaState(0, up=False),  # down
    ],
)
def test_a_lagging_or_down_replica_is_skipped(one_replica, settings, state):
    settings.REDIS_URL = ""
    one_replica["now"] = state
    assert replicas.replica_choose(None) is None


def test_the_probe_is_cached_for_a_second_per_process(one_replica, settings):
    settings.REDIS_URL = ""
    for _ in range(5):
        replicas.replica_choose(None)
    assert one_replica["probes"] == 1


@pytest.mark.redis
def test_the_position_is_shared_through_redis_and_unknown_when_redis_is_down(one_replica, private_redis):
    replicas.lsn_remember("u1", 500)
    replicas._local_lsns.clear()  # another app server: only Redis knows
    assert replicas.lsn_required("u1") == 500
    replicas.lsn_remember("u1", 400)
    replicas._local_lsns.clear()
    assert replicas.lsn_required("u1") == 500
    private_redis.kill()
    private_redis.wait(timeout=10)
    assert replicas.lsn_required("u1") is None
    assert replicas.replica_choose("u1") is None


class _FakeReplica:
    errors_occurred = False
    closed = False

    def close(self):
        self.closed = True


def test_a_replica_failing_mid_read_is_marked_down_and_the_read_runs_on_the_primary(one_replica, settings, monkeypatch):
    settings.REDIS_URL = ""
    fake = _FakeReplica()
    monkeypatch.setattr(replicas, "connections", {ALIAS: fake})
    seen = []

    def read():
        seen.append(replicas.current_read_alias())
        if len(seen) == 1:
            fake.errors_occurred = True  # what Django's error wrapper sets on the failing connection
            raise OperationalError("terminating connection due to administrator command")
        return "page"

    assert replicas.replica_run("u1", read) == "page"
    assert seen == [ALIAS, DEFAULT_DB_ALIAS]
    assert fake.closed
    assert replicas.replica_state(ALIAS).up is False  # skipped until the next probe


def test_an_error_of_the_primary_inside_a_replica_read_is_not_hidden(one_replica, settings, monkeypatch):
    settings.REDIS_URL = ""
    monkeypatch.setattr(replicas, "connections", {ALIAS: _FakeReplica()})

    def read():
        raise OperationalError("primary gone")

    with pytest.raises(OperationalError):
        replicas.replica_run("u1", read)


@pytest.mark.django_db
def test_readyz_is_degraded_not_down_when_a_replica_is(client, one_replica, settings):
    settings.REDIS_URL = ""
    one_replica["now"] = replicas.ReplicaState(0, up=False)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "checks": {"database": "ok", "cache": "ok", ALIAS: "down"}}
    replicas._states.clear()
    one_replica["now"] = replicas.ReplicaState(0, up=True, replay_lsn=1, lag=9.0)
    assert client.get("/readyz").json()["checks"][ALIAS] == "lagging"


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_write_request_remembers_the_primarys_position_after_its_commit(client_for, one_replica, settings):
    settings.REDIS_URL = ""
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:2],
        "ledgerx.db.middleware.ReadYourWritesMiddleware",
        *settings.MIDDLEWARE[2:],
    ]
    account = funded_account(amount=0)
    client = client_for(account.owner)
    client.get(f"/api/v1/accounts/{account.pk}/entries")
    assert replicas.lsn_required(account.owner.pk) == 0  # a read remembers nothing
    before = replicas.lsn_current()
    response = client.post(
        "/api/v1/deposits", {"account": str(account.pk), "amount": 100}, format="json", HTTP_IDEMPOTENCY_KEY=new_key()
    )
    assert response.status_code == 201
    remembered = replicas.lsn_required(account.owner.pk)
    assert before < remembered <= replicas.lsn_current()
    # The statement is answered by the primary while the replica has not replayed it.
    one_replica["now"] = replicas.ReplicaState(0, up=True, replay_lsn=before, lag=0.0)
    assert replicas.replica_choose(account.owner.pk) is None


def _settings_with(env: dict) -> subprocess.CompletedProcess:
    script = (
        "import json; from ledgerx import settings as s; "
        "print(json.dumps([s.REPLICA_ALIASES, s.__dict__.get('DATABASE_ROUTERS', []), "
        "'ledgerx.db.middleware.ReadYourWritesMiddleware' in s.MIDDLEWARE, "
        "{k: v.get('TEST', {}).get('MIRROR') for k, v in s.DATABASES.items()}]))"
    )
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DATABASE_REPLICA_URLS"}}
    return subprocess.run([sys.executable, "-c", script], env={**base, "DJANGO_DEBUG": "1", **env}, capture_output=True, text=True)


def test_without_replica_urls_there_is_no_router_and_no_extra_statement():
    result = _settings_with({"DATABASE_URL": "postgres://u@127.0.0.1:1/x"})
    assert json.loads(result.stdout) == [[], [], False, {"default": None}]


def test_replica_urls_add_mirrored_aliases_the_router_and_the_position_middleware():
    result = _settings_with(
        {"DATABASE_URL": "postgres://u@127.0.0.1:1/x", "DATABASE_REPLICA_URLS": "postgres://u@r1:5432/x, postgres://u@r2:5432/x"}
    )
    assert json.loads(result.stdout) == [
        ["replica1", "replica2"],
        ["ledgerx.db.router.PrimaryReplicaRouter"],
        True,
        {"default": None, "replica1": "default", "replica2": "default"},
    ]


def test_replica_urls_need_postgresql():
    result = _settings_with({"DATABASE_REPLICA_URLS": "postgres://u@r1:5432/x"})
    assert result.returncode != 0 and "DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL" in result.stderr
