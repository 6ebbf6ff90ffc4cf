"""Metrics as operations see them: two gunicorn workers, scraped by a real Prometheus.

The workload goes through HTTP to a gunicorn with two workers (its own
process, on the test database), so the counters of both workers must add up
in one exposition; then a real Prometheus scrapes it, and a metric and a
firing alert are read back through Prometheus's HTTP API.
"""

import os
import shutil
import subprocess
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ledgerx.tests.observability.conftest import PIN, ROOT, TOKEN, free_port, stop, user_over_http, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]



def _workload(base: str) -> None:
    """2 deposits (one replayed), 1 transfer, 1 refused for funds, 1 wrong PIN."""
    payer, payee = user_over_http(base, "payer@example.com"), user_over_http(base, "payee@example.com")
    source = requests.post(f"{base}/api/v1/accounts", json={"currency": "USD"}, headers=payer).json()["id"]
    destination = requests.post(f"{base}/api/v1/accounts", json={"currency": "USD"}, headers=payee).json()["id"]

    def post(path, body, key, auth=payer):
        return requests.post(f"{base}/api/v1/{path}", json=body, headers={**auth, "Idempotency-Key": key})

    assert post("deposits", {"account": source, "amount": 5_000}, "d-1").status_code == 201
    assert post("deposits", {"account": source, "amount": 5_000}, "d-1").headers["Idempotent-Replayed"] == "true"
    transfer = {"source_account": source, "destination_account": destination, "pin": PIN}
    assert post("transfers", {**transfer, "amount": 1_000}, "t-1").status_code == 201
    assert post("transfers", {**transfer, "amount": 9_000}, "t-2").json()["error"]["code"] == "insufficient_funds"
    assert post("transfers", {**transfer, "amount": 1, "pin": "9513"}, "t-3").json()["error"]["code"] == "invalid_pin"
    # Enough reads that both workers answer some (each request on a new connection).
    for _ in range(40):
        assert requests.get(f"{base}/api/v1/me", headers=payer).status_code == 200


def _scrape(base: str) -> dict:
    response = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.fixture
def gunicorn(gunicorn_start):
    base, metrics_dir, _log = gunicorn_start(LEDGERX_METRICS_TOKEN=TOKEN)
    return base, metrics_dir


def test_two_workers_add_up_to_the_exact_workload(gunicorn):
    base, metrics_dir = gunicorn
    assert requests.get(f"{base}/metrics").status_code == 401
    _workload(base)

    worker_files = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}
    assert len(worker_files) >= 2, "both workers should have answered part of the workload"
    scraped = _scrape(base)

    def at(name, **labels):
        return scraped.get((name, tuple(sorted(labels.items()))), 0.0)

    assert at("ledgerx_http_requests_total", route="api/v1/deposits", method="POST", status="2xx") == 2
    assert at("ledgerx_http_requests_total", route="api/v1/transfers", method="POST", status="2xx") == 1
    assert at("ledgerx_http_requests_total", route="api/v1/transfers", method="POST", status="4xx") == 2
    assert at("ledgerx_http_requests_total", route="api/v1/me", method="GET", status="2xx") == 40
    assert at("ledgerx_api_errors_total", code="insufficient_funds", status="409") == 1
    assert at("ledgerx_api_errors_total", code="invalid_pin", status="403") == 1
    assert at("ledgerx_pin_failures_total") == 1
    assert at("ledgerx_idempotency_total", outcome="replayed") == 1
    assert at("ledgerx_http_requests_in_flight") == 1  # the scrape itself
    # Money that moved, counted once when it committed (the replay and the refusals moved nothing).
    assert at("ledgerx_movements_total", type="deposit", currency="USD") == 1
    assert at("ledgerx_movements_total", type="transfer", currency="USD") == 1
    assert at("ledgerx_moved_minor_units_total", type="deposit", currency="USD") == 5_000
    assert at("ledgerx_moved_minor_units_total", type="transfer", currency="USD") == 1_000


def _prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("LEDGERX_REQUIRE_POSTGRES") == "1":
            pytest.fail("prometheus is not installed (CI installs Debian's prometheus package)")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    return binary


def test_prometheus_scrapes_a_metric_and_fires_an_alert(gunicorn, tmp_path):
    base, _ = gunicorn
    binary = _prometheus_binary()
    _workload(base)
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "test-alerts.yml").write_text(
        "groups:\n"
        "  - name: ledgerx-test\n"
        "    rules:\n"
        "      - alert: LedgerXRefusedForFunds\n"
        '        expr: sum(ledgerx_api_errors_total{code="insufficient_funds"}) > 0\n'
    )
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{ROOT / 'deploy/prometheus/alerts.yml'}', '{tmp_path / 'test-alerts.yml'}']\n"
        "scrape_configs:\n"
        "  - job_name: ledgerx\n"
        f"    authorization: {{type: Bearer, credentials_file: '{tmp_path / 'token'}'}}\n"
        f"    static_configs: [{{targets: ['{base.removeprefix('http://')}']}}]\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"),
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_for(f"{api}/status/buildinfo")
        query = 'sum(ledgerx_http_requests_total{route="api/v1/deposits",status="2xx"})'
        deadline = time.monotonic() + 60
        value = alerts = None
        while time.monotonic() < deadline:
            result = requests.get(f"{api}/query", params={"query": query}).json()["data"]["result"]
            value = result[0]["value"][1] if result else None
            alerts = {a["labels"]["alertname"]: a["state"] for a in requests.get(f"{api}/alerts").json()["data"]["alerts"]}
            if value == "2" and alerts.get("LedgerXRefusedForFunds") == "firing":
                break
            time.sleep(0.5)
        assert value == "2"
        assert alerts == {"LedgerXRefusedForFunds": "firing"}  # and none of the shipped rules
    finally:
        stop(process)
