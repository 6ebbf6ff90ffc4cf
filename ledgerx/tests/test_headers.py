"""Response headers and proxy trust: nothing cacheable, X-Forwarded-Proto only from a trusted proxy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/accounts", "/api/v1/nope", "/readyz", "/healthz"])
def test_api_responses_are_no_store(api_client, path):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(UserFactory())}")
    assert api_client.get(path)["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_token_and_error_responses_are_no_store(api_client):
    user = UserFactory()
    login = api_client.post("/api/v1/auth/login", {"email": user.email, "password": "wrong"}, format="json")
    assert (login.status_code, login["Cache-Control"]) == (401, "no-store")


def _settings_value(expression: str, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LEDGERX_"))}
    env = {
        **clean,
        "DJANGO_SECRET_KEY": "x9!k2Lm#Qp7@Zr4$Tw8^Vb1&Yn5*Hc3(Jd6)Fg0-Ks2_Ue9+Ai7=Wo4",
        "LEDGERX_JWT_SIGNING_KEY": "jwt-3f9c1e7a5b2d8f4e6a0c9b7d5e3f1a2c4b6d8e0f",
        "LEDGERX_PIN_PEPPER": "pepper-7d1e5f3a9c2b8e4f6a0d",
        **env,
    }
    code = f"import ledgerx.settings as s; print(repr({expression}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_x_forwarded_proto_is_ignored_without_a_trusted_proxy():
    assert _settings_value("getattr(s, 'SECURE_PROXY_SSL_HEADER', None)") == "None"
    assert _settings_value("getattr(s, 'SECURE_PROXY_SSL_HEADER', None)", LEDGERX_TRUSTED_PROXIES="0") == "None"


def test_x_forwarded_proto_is_believed_behind_a_trusted_proxy():
    value = _settings_value("getattr(s, 'SECURE_PROXY_SSL_HEADER', None)", LEDGERX_TRUSTED_PROXIES="1")
    assert value == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.django_db
def test_a_spoofed_x_forwarded_proto_from_a_client_still_gets_the_https_redirect(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None  # LEDGERX_TRUSTED_PROXIES=0
    response = client.get("/api/v1/me", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_gunicorn_applies_the_documented_request_limits():
    import runpy

    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert (config["limit_request_line"], config["limit_request_fields"], config["limit_request_field_size"]) == (
        4094,
        100,
        8190,
    )


def test_gunicorn_serves_with_threads_so_probes_do_not_queue_behind_bcrypt(monkeypatch):
    import runpy

    monkeypatch.delenv("LEDGERX_THREADS", raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    from gunicorn.workers.gthread import ThreadWorker

    from ledgerx.server.workers import JsonErrorThreadWorker

    assert config["worker_class"] == "ledgerx.server.workers.JsonErrorThreadWorker"
    assert issubclass(JsonErrorThreadWorker, ThreadWorker)
    assert config["threads"] == 4
