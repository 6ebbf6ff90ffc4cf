import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from accounts.tests.conftest import audit_actions
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

REFRESH = "/api/v1/auth/refresh"
TOKEN_INVALID = 401, "token_invalid"


def _code(response):
    return response.status_code, response.json()["error"]["code"]


def test_refresh_rotates_and_revokes_the_presented_token(api_client, user, login):
    first = login(user)
    response = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert response.status_code == 200
    second = response.json()
    assert set(second) == {"access", "refresh"} and second["refresh"] != first["refresh"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {second['access']}")
    assert api_client.get("/api/v1/me").status_code == 200
    assert BlacklistedToken.objects.filter(token__token=first["refresh"]).exists()
    assert not BlacklistedToken.objects.filter(token__token=second["refresh"]).exists()


def test_reusing_a_revoked_refresh_token_revokes_every_session(api_client, user, login):
    other_session = login(user)
    first = login(user)
    second = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json").json()

    replay = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert _code(replay) == TOKEN_INVALID

    for refresh in (second["refresh"], other_session["refresh"]):
        assert _code(api_client.post(REFRESH, {"refresh": refresh}, format="json")) == TOKEN_INVALID
    outstanding = OutstandingToken.objects.filter(user=user)
    assert outstanding.count() == 3
    assert BlacklistedToken.objects.filter(token__user=user).count() == 3
    assert audit_actions(user.pk).count("auth.refresh_reused") == 3  # the replay, then the two dead ones


def test_failed_refresh_issues_nothing(api_client, db):
    before = OutstandingToken.objects.count()
    assert _code(api_client.post(REFRESH, {"refresh": "not.a.jwt"}, format="json")) == TOKEN_INVALID
    assert OutstandingToken.objects.count() == before


def test_tokens_of_a_deleted_user_are_401(api_client, db):
    # Issued directly: a user with audit records cannot be deleted at all.
    user = UserFactory()
    refresh = RefreshToken.for_user(user)
    access, refresh = str(refresh.access_token), str(refresh)
    User.objects.filter(pk=user.pk).delete()
    assert _code(api_client.post(REFRESH, {"refresh": refresh}, format="json")) == TOKEN_INVALID
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert _code(api_client.get("/api/v1/me")) == TOKEN_INVALID


def test_an_access_token_is_not_a_refresh_token(api_client, user, login):
    tokens = login(user)
    assert _code(api_client.post(REFRESH, {"refresh": tokens["access"]}, format="json")) == TOKEN_INVALID


def test_logout_kills_that_refresh_token(api_client, user, login):
    tokens = login(user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    response = api_client.post("/api/v1/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    assert (response.status_code, response.content) == (204, b"")
    assert _code(api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")) == TOKEN_INVALID
    assert audit_actions(user.pk).count("auth.logout") == 1


def test_logout_keeps_other_sessions(api_client, user, login):
    kept = login(user)
    tokens = login(user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api_client.post("/api/v1/auth/logout", {"refresh": tokens["refresh"]}, format="json").status_code == 204
    api_client.credentials()
    assert api_client.post(REFRESH, {"refresh": kept["refresh"]}, format="json").status_code == 200


def test_logout_of_someone_elses_token_is_refused(api_client, user, login):
    victim = login(UserFactory())
    tokens = login(user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    response = api_client.post("/api/v1/auth/logout", {"refresh": victim["refresh"]}, format="json")
    assert _code(response) == TOKEN_INVALID
    assert not BlacklistedToken.objects.filter(token__token=victim["refresh"]).exists()


def test_logout_needs_an_access_token(api_client, user, login):
    tokens = login(user)
    response = api_client.post("/api/v1/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    assert _code(response) == (401, "not_authenticated")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_parallel_refreshes_with_one_token_exactly_one_wins():
    user = UserFactory()
    tokens = APIClient().post(
        "/api/v1/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    ).json()
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def refresh():
        try:
            client = APIClient()
            barrier.wait()
            statuses.append(client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 401]
    # 1 login + 1 rotation issued; the loser's reuse revoked everything.
    assert OutstandingToken.objects.filter(user=user).count() == 2
    assert BlacklistedToken.objects.filter(token__user=user).count() == 2
