"""The operations files in deploy/ are valid, and the alert rules fire when they should."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def promtool(*args) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        if os.environ.get("LEDGERX_REQUIRE_POSTGRES") == "1":
            pytest.fail("promtool is not installed (CI installs Debian's prometheus package)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return subprocess.run([binary, *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True)


def test_scrape_config_is_valid():
    result = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_are_valid():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_alert_rules_fire_as_their_unit_tests_say():
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_only_charts_metrics_ledgerx_exports():
    import json
    import re

    from ledgerx.observability import metrics

    exported = {m._name for m in vars(metrics).values() if hasattr(m, "_name") and hasattr(m, "_type")}
    exported |= {
        "ledgerx_audit_unsealed_records", "ledgerx_audit_oldest_unsealed_seconds", "ledgerx_holds_open",
        "ledgerx_webhook_deliveries_due", "ledgerx_webhook_oldest_due_seconds", "ledgerx_approvals_pending",
    }
    dashboard = json.loads((DEPLOY / "grafana" / "ledgerx-dashboard.json").read_text())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(ledgerx_[a-z_]+?)(?:_total|_bucket|_count|_sum)?\b", target["expr"]))
    assert used and used <= exported, used - exported
