"""Rate limits: AUTH_RATE per IP and per email (per account on refresh) on identity endpoints, API_RATE
per user everywhere; 503 on identity endpoints when the cache is down."""

import socket

import pytest
from django.test import override_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

LOGIN = "/api/v1/auth/login"


def _login(api_client, email, password="wrong-password-1", **extra):
    return api_client.post(LOGIN, {"email": email, "password": password}, format="json", **extra)


def _assert_limited(response):
    assert response.status_code == 429
    assert response.json() == {"error": {"code": "rate_limited", "message": "Too many requests."}}
    assert 1 <= int(response["Retry-After"]) <= 60


@override_settings(AUTH_RATE="5/m")
def test_login_is_limited_per_ip(api_client, db):
    statuses = [_login(api_client, f"u{n}@example.com").status_code for n in range(5)]
    assert statuses == [401] * 5
    _assert_limited(_login(api_client, "fresh@example.com"))


@override_settings(AUTH_RATE="5/m")
def test_login_is_limited_per_email_across_ips(api_client, user):
    for n in range(5):
        assert _login(api_client, user.email, REMOTE_ADDR=f"198.51.100.{n}").status_code == 401
    # Even the right password from a fresh IP waits: the account is being attacked.
    _assert_limited(_login(api_client, user.email.upper(), DEFAULT_PASSWORD, REMOTE_ADDR="198.51.100.99"))


@override_settings(AUTH_RATE="5/m", TRUSTED_PROXY_COUNT=0)
def test_spoofed_forwarded_for_does_not_reset_the_limit(api_client, db):
    for n in range(5):
        _login(api_client, f"u{n}@example.com", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    _assert_limited(_login(api_client, "z@example.com", HTTP_X_FORWARDED_FOR="203.0.113.200"))


@override_settings(AUTH_RATE="5/m", TRUSTED_PROXY_COUNT=1)
def test_behind_one_proxy_only_the_address_it_saw_counts(api_client, db):
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for n in range(5):
        _login(api_client, f"u{n}@example.com", HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 192.0.2.7", **proxy)
    _assert_limited(_login(api_client, "z@example.com", HTTP_X_FORWARDED_FOR="6.6.6.99, 192.0.2.7", **proxy))
    # Another real client behind the same proxy has its own bucket.
    assert _login(api_client, "y@example.com", HTTP_X_FORWARDED_FOR="192.0.2.8", **proxy).status_code == 401


@override_settings(AUTH_RATE="2/m")
def test_register_and_refresh_are_limited_per_ip(api_client, db):
    body = {"email": "a@example.com", "password": "short", "full_name": "A"}
    for _ in range(2):
        assert api_client.post("/api/v1/auth/register", body, format="json").status_code == 400
    _assert_limited(api_client.post("/api/v1/auth/register", {**body, "email": "b@example.com"}, format="json"))
    for _ in range(2):
        assert api_client.post("/api/v1/auth/refresh", {"refresh": "x"}, format="json").status_code == 401
    _assert_limited(api_client.post("/api/v1/auth/refresh", {"refresh": "x"}, format="json"))


def _refresh(api_client, token, ip):
    return api_client.post("/api/v1/auth/refresh", {"refresh": str(token)}, format="json", REMOTE_ADDR=ip)


@override_settings(AUTH_RATE="5/m")
def test_refresh_is_limited_per_account_across_ips(api_client, user):
    token = str(RefreshToken.for_user(user))
    for n in range(5):
        response = _refresh(api_client, token, f"198.51.100.{n}")
        assert response.status_code == 200
        token = response.json()["refresh"]
    # A fresh IP does not buy the account a fresh bucket...
    _assert_limited(_refresh(api_client, token, "198.51.100.99"))
    # ...and the limited account does not hold up anyone else's.
    assert _refresh(api_client, RefreshToken.for_user(UserFactory()), "198.51.100.99").status_code == 200


@override_settings(AUTH_RATE="5/m")
def test_forged_refresh_tokens_count_per_ip_only(api_client, user):
    import jwt

    forged = jwt.encode({"sub": str(user.pk), "token_type": "refresh", "jti": "x"}, "not-our-signing-key-" * 2, algorithm="HS256")
    for n in range(5):
        for token in (forged, "not-a-token"):
            assert _refresh(api_client, token, f"203.0.113.{n}").status_code == 401
    # Neither spent the named user's budget.
    assert _refresh(api_client, RefreshToken.for_user(user), "203.0.113.99").status_code == 200


@override_settings(API_RATE="3/m")
def test_api_is_limited_per_user(api_client, db):
    first, second = UserFactory(), UserFactory()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(first).access_token}")
    assert [api_client.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 200]
    _assert_limited(api_client.get("/api/v1/me"))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(second).access_token}")
    assert api_client.get("/api/v1/me").status_code == 200


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_down():
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    with override_settings(CACHES=caches):
        yield


def test_with_redis_down_auth_answers_503_and_reads_still_work(api_client, user, redis_down):
    unavailable = {
        "error": {"code": "service_unavailable", "message": "The rate limiter is unavailable; try again shortly."}
    }
    refresh = RefreshToken.for_user(user)
    responses = [
        _login(api_client, user.email, DEFAULT_PASSWORD),
        api_client.post(
            "/api/v1/auth/register",
            {"email": "n@example.com", "password": "a-long-unusual-passphrase", "full_name": "N"},
            format="json",
        ),
        api_client.post("/api/v1/auth/refresh", {"refresh": str(refresh)}, format="json"),
    ]
    assert [(r.status_code, r.json(), r["Retry-After"]) for r in responses] == [(503, unavailable, "2")] * 3

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh.access_token}")
    me = api_client.get("/api/v1/me")
    assert (me.status_code, me.json()["id"]) == (200, str(user.pk))
