"""A real gunicorn started from the repository's gunicorn.conf.py, DEBUG off."""

import os
import subprocess
import sys

import pytest

from ledgerx.tests.observability.conftest import ROOT, free_port, stop, wait_for

SECRETS = {
    "DJANGO_SECRET_KEY": "server-test-secret-5b2d8f4e6a0c9b7d5e3f1a2c4b6d8e0f9c1e7a",
    "LEDGERX_JWT_SIGNING_KEY": "server-test-jwt-8f4e6a0c9b7d5e3f3f9c1e7a5b2d",
    "LEDGERX_PIN_PEPPER": "server-test-pepper-3a9c2b8e4f7d1e5f",
}


def start_gunicorn(directory, **extra_env) -> tuple[str, subprocess.Popen]:
    """(base URL, process) of a gunicorn on a free port, once ``/healthz`` answers.

    Without ``DATABASE_URL`` in ``extra_env`` it serves an empty SQLite file in
    ``directory``: enough for what gunicorn answers itself and for ``/healthz``.
    """
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LEDGERX_", "DATABASE_", "REDIS_"))},
        **SECRETS,
        "DJANGO_SETTINGS_MODULE": "ledgerx.settings",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LEDGERX_SSL_REDIRECT": "0",
        "LEDGERX_HSTS_SECONDS": "0",
        "LEDGERX_SQLITE_PATH": str(directory / "server.sqlite3"),
        "LEDGERX_AUDIT_CHECKPOINT_FILE": str(directory / "checkpoints.jsonl"),
        "PROMETHEUS_MULTIPROC_DIR": str(directory / f"metrics-{port}"),
        "LEDGERX_BIND": f"127.0.0.1:{port}",
        **extra_env,
    }
    log = open(directory / f"gunicorn-{port}.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "ledgerx.wsgi:application", "-c", "gunicorn.conf.py"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz")
    except Exception:
        stop(process)
        raise
    return base, process


@pytest.fixture
def gunicorn_server(tmp_path):
    """start(**env) -> base URL; every server started is stopped after the test."""
    started = []

    def start(**extra_env):
        base, process = start_gunicorn(tmp_path, **extra_env)
        started.append(process)
        return base

    yield start
    for process in started:
        stop(process)
