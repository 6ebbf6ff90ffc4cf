"""A real Redis that dies mid-run: identity endpoints refuse (503), reads go on.

Uses the suite's ``private_redis`` (a throwaway redis-server) and stops only that one.
"""


import pytest

from accounts.tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.redis]


def test_redis_dying_turns_login_into_503_but_me_keeps_working(api_client, user, private_redis):
    login = {"email": user.email, "password": DEFAULT_PASSWORD}
    response = api_client.post("/api/v1/auth/login", login, format="json")
    assert response.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert api_client.get("/api/v1/me").status_code == 200

    private_redis.terminate()
    private_redis.wait(timeout=10)

    api_client.credentials()
    refused = api_client.post("/api/v1/auth/login", login, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "service_unavailable")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    me = api_client.get("/api/v1/me")
    assert (me.status_code, me.json()["email"]) == (200, user.email)
