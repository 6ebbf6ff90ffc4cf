"""Per-email lockout: others failing on an email cannot lock out the owner's known device."""

import pytest
from django.core import signing
from django.test import override_settings

from accounts import devices
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

LOGIN = "/api/v1/auth/login"
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_five_a_minute")]


@pytest.fixture
def _five_a_minute():
    with override_settings(AUTH_RATE="5/m"):
        yield


def _login(api_client, email, password="wrong-password-1", ip="198.51.100.1", token=None):
    headers = {"HTTP_DEVICE_TOKEN": token} if token else {}
    return api_client.post(LOGIN, {"email": email, "password": password}, format="json", REMOTE_ADDR=ip, **headers)


def _lock_out(api_client, email):
    """An attacker fails on the email from fresh IPs until the email is limited (at most 5 tries a minute)."""
    statuses = [_login(api_client, email, ip=f"203.0.113.{n}").status_code for n in range(6)]
    assert statuses[-1] == 429 and set(statuses[:4]) == {401}


def test_a_successful_login_hands_out_a_known_device_token(api_client):
    user = UserFactory()
    response = _login(api_client, user.email, DEFAULT_PASSWORD)
    assert response.status_code == 200
    token = response["Device-Token"]
    assert response.cookies[devices.COOKIE].value == token
    assert response.cookies[devices.COOKIE]["httponly"] is True
    assert response.cookies[devices.COOKIE]["samesite"] == "Strict"
    assert signing.loads(token, salt=devices.SALT)["u"] == str(user.pk)


def test_the_owners_known_device_passes_while_the_email_is_locked_out(api_client):
    user = UserFactory()
    token = _login(api_client, user.email, DEFAULT_PASSWORD, ip="192.0.2.10")["Device-Token"]
    api_client.cookies.clear()
    _lock_out(api_client, user.email)
    # Without the device token even the right password waits (the account is under attack) ...
    assert _login(api_client, user.email, DEFAULT_PASSWORD, ip="192.0.2.11").status_code == 429
    # ... with it, the owner logs in, by header or by cookie.
    assert _login(api_client, user.email, DEFAULT_PASSWORD, ip="192.0.2.12", token=token).status_code == 200
    api_client.cookies[devices.COOKIE] = token
    assert _login(api_client, user.email, DEFAULT_PASSWORD, ip="192.0.2.13").status_code == 200


def test_a_token_of_another_user_or_a_forged_one_counts_per_email(api_client):
    victim, other = UserFactory(), UserFactory()
    others_token = _login(api_client, other.email, DEFAULT_PASSWORD, ip="192.0.2.20")["Device-Token"]
    forged = signing.dumps({"u": str(victim.pk), "d": "x"}, key="not-our-key", salt=devices.SALT)
    api_client.cookies.clear()
    _lock_out(api_client, victim.email)
    for token in (others_token, forged, "garbage"):
        assert _login(api_client, victim.email, DEFAULT_PASSWORD, ip="192.0.2.21", token=token).status_code == 429


def test_a_known_device_is_limited_by_itself(api_client):
    user = UserFactory()
    token = _login(api_client, user.email, DEFAULT_PASSWORD, ip="192.0.2.30")["Device-Token"]
    api_client.cookies.clear()
    for n in range(5):
        assert _login(api_client, user.email, ip=f"192.0.2.{40 + n}", token=token).status_code == 401
    assert _login(api_client, user.email, DEFAULT_PASSWORD, ip="192.0.2.50", token=token).status_code == 429
