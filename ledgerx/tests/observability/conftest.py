"""A real gunicorn (two workers) on the test database, for the observability tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "live-metrics-token"
PASSWORD = "a long enough passphrase 42"
PIN = "4826"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, *, seconds: float = 30, **kwargs) -> requests.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return requests.get(url, timeout=2, **kwargs)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def gunicorn_start(transactional_db, tmp_path):
    """Start a production-like server with two workers on the test database: (base URL, metrics dir, log file)."""
    started = []

    def start(**extra_env):
        return _start(tmp_path, extra_env, started)

    yield start
    for process in started:
        stop(process)


def _start(tmp_path, extra_env, started):
    db = settings.DATABASES["default"]
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LEDGERX_", "DATABASE_", "REDIS_"))},
        "DJANGO_SETTINGS_MODULE": "ledgerx.settings",
        "DJANGO_SECRET_KEY": "live-test-secret-9c1e7a5b2d8f4e6a0c9b7d5e3f1a2c4b6d8e0f",
        "LEDGERX_JWT_SIGNING_KEY": "live-test-jwt-3f9c1e7a5b2d8f4e6a0c9b7d5e3f",
        "LEDGERX_PIN_PEPPER": "live-test-pepper-7d1e5f3a9c2b8e4f",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LEDGERX_SSL_REDIRECT": "0",
        "LEDGERX_HSTS_SECONDS": "0",
        "LEDGERX_AUTH_RATE": "1000/m",
        "LEDGERX_PIN_BCRYPT_ROUNDS": "4",
        "LEDGERX_METRICS_TOKEN": TOKEN,
        "LEDGERX_ACCESS_LOG": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra_env)
    log = tmp_path / "gunicorn.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "ledgerx.wsgi:application", "-c", "gunicorn.conf.py",
         "--workers", "2", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
    )
    started.append(process)
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/healthz")
    return base, tmp_path / "metrics", log


def user_over_http(base: str, email: str) -> dict:
    """Register, log in and set a PIN over HTTP; the Authorization header to use."""
    assert requests.post(f"{base}/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": email}).status_code == 201
    tokens = requests.post(f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    auth = {"Authorization": f"Bearer {tokens['access']}"}
    assert requests.put(f"{base}/api/v1/me/pin", json={"pin": PIN, "password": PASSWORD}, headers=auth).status_code == 204
    return auth
