"""Production password hashing: bcrypt over SHA-256, cost 12, no 72-byte truncation."""

from django.contrib.auth.hashers import identify_hasher
from django.test import override_settings

from accounts import services

PRODUCTION_HASHERS = ["accounts.hashers.BCryptSHA256Cost12PasswordHasher"]
LONG = "correct horse battery staple " * 3 + "A"  # 88 bytes


@override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
def test_password_hash_is_bcrypt_sha256_at_cost_12(db):
    user = services.user_register(email="a@example.com", password="a-long-unusual-passphrase", full_name="A")
    user.refresh_from_db()
    assert identify_hasher(user.password).algorithm == "bcrypt_sha256"
    assert user.password.startswith("bcrypt_sha256$$2b$12$")


@override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
def test_passwords_longer_than_72_bytes_count_in_full(db):
    assert len(LONG.encode()) > 72
    user = services.user_register(email="b@example.com", password=LONG, full_name="B")
    user.refresh_from_db()
    assert user.check_password(LONG)
    assert not user.check_password(LONG[:-1] + "B")  # differs only at byte 88
    assert not user.check_password(LONG[:72])


@override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
def test_long_password_login_over_the_api(api_client, db):
    services.user_register(email="c@example.com", password=LONG, full_name="C")
    ok = api_client.post("/api/v1/auth/login", {"email": "c@example.com", "password": LONG}, format="json")
    assert ok.status_code == 200
    wrong = api_client.post(
        "/api/v1/auth/login", {"email": "c@example.com", "password": LONG[:-1] + "B"}, format="json"
    )
    assert wrong.status_code == 401
