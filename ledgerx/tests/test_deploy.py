"""Production settings: `check --deploy` is clean, and secrets are mandatory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "ledgerx.settings",
    "DJANGO_SECRET_KEY": "x9!k2Lm#Qp7@Zr4$Tw8^Vb1&Yn5*Hc3(Jd6)Fg0-Ks2_Ue9+Ai7=Wo4",
    "LEDGERX_JWT_SIGNING_KEY": "jwt-3f9c1e7a5b2d8f4e6a0c9b7d5e3f1a2c4b6d8e0f",
    "LEDGERX_PIN_PEPPER": "pepper-7d1e5f3a9c2b8e4f6a0d",
    "LEDGERX_AUDIT_SIGNING_KEY": "audit-5c2e8a1f7b3d9e6c0a4f8b2d6e1c9a7f",
    "DJANGO_ALLOWED_HOSTS": "ledgerx.example.com",
}


def _manage(*args, env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LEDGERX_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


PUBLIC_KEYS = {
    "DJANGO_SECRET_KEY": "ledgerx-insecure-local-development-key-do-not-use-in-production",
    "LEDGERX_JWT_SIGNING_KEY": "ledgerx-insecure-local-jwt-signing-key-0123456789abcdef",
    "LEDGERX_PIN_PEPPER": "ledgerx-insecure-local-pin-pepper",
}


def test_the_testing_flag_does_not_turn_public_keys_on_without_debug():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k not in PUBLIC_KEYS}
    result = _manage("check", env={**env, "LEDGERX_TESTING": "1"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize("variable", sorted(PUBLIC_KEYS))
@pytest.mark.parametrize("testing", ["0", "1"])
def test_production_refuses_to_start_with_a_public_key(variable, testing):
    env = {**PRODUCTION_ENV, variable: PUBLIC_KEYS[variable], "LEDGERX_TESTING": testing}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert f"{variable} is a public development key" in result.stderr


def test_check_deploy_fails_on_a_public_key():
    """With DEBUG on the development keys load; check --deploy names each of them."""
    env = {k: v for k, v in PRODUCTION_ENV.items() if k not in PUBLIC_KEYS}
    result = _manage("check", "--deploy", env={**env, "DJANGO_DEBUG": "1"})
    assert result.returncode != 0
    for setting in ("SECRET_KEY", "JWT_SIGNING_KEY", "PIN_PEPPER"):
        assert f"(ledgerx.E001) {setting} is a public development key." in result.stderr


def test_check_deploy_warns_without_an_audit_signing_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "LEDGERX_AUDIT_SIGNING_KEY"}
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "(ledgerx.W002) LEDGERX_AUDIT_SIGNING_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    "command, user",
    [("migrate", "owner"), ("db_app_role", "owner"), ("runserver", "app"), ("verify_audit", "app")],
)
def test_only_the_schema_commands_connect_as_the_owner(command, user):
    env = {
        **PRODUCTION_ENV,
        "DATABASE_URL": "postgres://app@db.example/ledgerx",
        "DATABASE_MIGRATE_URL": "postgres://owner@db.example/ledgerx",
    }
    code = f"import sys; sys.argv = ['manage.py', '{command}']; import ledgerx.settings as s; print(s.DATABASES['default']['USER'])"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LEDGERX_", "DATABASE_"))}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == user
