"""The scaled-out topology, driven over HTTP: ``scripts/cluster up`` started it.

``LEDGERX_CLUSTER_URL`` is the load balancer (the last line ``up`` printed);
the app servers, ports and the metrics token come from ``scripts/cluster env``.
Without the URL these tests are skipped, but with ``LEDGERX_REQUIRE_CLUSTER=1``
(``.ci/run``) that is an error: CI cannot go green by not starting the cluster.
"""

import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "cluster-password-8461"
PIN = "4826"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("LEDGERX_CLUSTER_URL"):
        return
    if os.environ.get("LEDGERX_REQUIRE_CLUSTER") == "1":
        raise pytest.UsageError("LEDGERX_REQUIRE_CLUSTER=1 but LEDGERX_CLUSTER_URL is not set: start `scripts/cluster up`")
    skip = pytest.mark.skip(reason="needs the cluster (LEDGERX_CLUSTER_URL from `scripts/cluster up`)")
    for item in items:
        if item.get_closest_marker("cluster"):
            item.add_marker(skip)


# What the test settings put in this process's environment; the cluster's processes run
# with production settings and the secrets of the cluster's own.
_TEST_ONLY = {"DJANGO_SETTINGS_MODULE", "LEDGERX_TESTING", "LEDGERX_FAST_PASSWORD_HASHER", "LEDGERX_PIN_BCRYPT_ROUNDS",
              "LEDGERX_SQLITE_PATH", "LEDGERX_AUDIT_CHECKPOINT_FILE", "DJANGO_SECRET_KEY", "LEDGERX_JWT_SIGNING_KEY",
              "LEDGERX_PIN_PEPPER", "LEDGERX_AUDIT_SIGNING_KEY"}


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in _TEST_ONLY}


def cluster(*args: str) -> str:
    command = [str(ROOT / "scripts" / "cluster"), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True, env=_clean_env()).stdout


def manage(*args: str) -> subprocess.CompletedProcess:
    """``manage.py`` with the app servers' environment (``scripts/cluster env``)."""
    env = {**_clean_env(), **dict(line.split("=", 1) for line in cluster("env").splitlines() if "=" in line)}
    return subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)


@dataclass
class Cluster:
    lb: str
    apps: list[str]
    metrics_token: str

    def metric(self, base: str, name: str) -> float:
        """A counter's value summed over its label sets on one app server."""
        text = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {self.metrics_token}"}, timeout=10).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


@pytest.fixture(scope="session")
def topology() -> Cluster:
    env = dict(line.split("=", 1) for line in cluster("env").splitlines() if "=" in line)
    ports = os.environ.get("LEDGERX_CLUSTER_APP_PORTS", "8150 8151").split()
    return Cluster(
        lb=os.environ["LEDGERX_CLUSTER_URL"].rstrip("/"),
        apps=[f"http://127.0.0.1:{port}" for port in ports],
        metrics_token=env["LEDGERX_METRICS_TOKEN"],
    )


class Customer:
    """A registered user with a PIN and one USD account, talking to whichever server it is told."""

    def __init__(self, base: str):
        self.email = f"c-{uuid.uuid4().hex[:12]}@example.com"
        api = f"{base}/api/v1"
        reply = requests.post(f"{api}/auth/register", json={"email": self.email, "password": PASSWORD, "full_name": "C"}, timeout=30)
        assert reply.status_code == 201, reply.text
        reply = requests.post(f"{api}/auth/login", json={"email": self.email, "password": PASSWORD}, timeout=30)
        assert reply.status_code == 200, reply.text
        self.headers = {"Authorization": f"Bearer {reply.json()['access']}"}
        reply = requests.put(f"{api}/me/pin", json={"pin": PIN, "password": PASSWORD}, headers=self.headers, timeout=30)
        assert reply.status_code == 204, reply.text
        reply = requests.post(f"{api}/accounts", json={"currency": "USD", "name": "main"}, headers=self.headers, timeout=30)
        assert reply.status_code == 201, reply.text
        self.account = reply.json()["id"]

    def post(self, base: str, path: str, body: dict, key: str | None = None) -> requests.Response:
        headers = {**self.headers, "Idempotency-Key": key or str(uuid.uuid4())}
        return requests.post(f"{base}/api/v1/{path}", json=body, headers=headers, timeout=30)

    def get(self, base: str, path: str) -> requests.Response:
        return requests.get(f"{base}/api/v1/{path}", headers=self.headers, timeout=30)

    def deposit(self, base: str, amount: int, key: str | None = None) -> requests.Response:
        return self.post(base, "deposits", {"account": self.account, "amount": amount}, key)


@pytest.fixture
def customer(topology):
    return lambda: Customer(topology.lb)
