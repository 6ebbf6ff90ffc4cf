"""Access tokens: HS256 with our key, our issuer and audience, nothing else."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone

ME = "/api/v1/me"


def _claims(user, **overrides):
    now = timezone.now()
    claims = {
        "token_type": "access",
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "iat": int(now.timestamp()),
        "jti": "0123456789abcdef",
        "sub": str(user.pk),
        "iss": settings.SIMPLE_JWT["ISSUER"],
        "aud": settings.SIMPLE_JWT["AUDIENCE"],
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _get_me(api_client, token):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api_client.get(ME)
    return response.status_code, response.json().get("error", {}).get("code")


def test_a_well_formed_token_is_accepted(api_client, user):
    token = jwt.encode(_claims(user), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    assert _get_me(api_client, token) == (200, None)


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "someone-else"},
        {"iss": None},
        {"aud": "another-api"},
        {"aud": None},
        {"exp": 1_000_000_000},
        {"token_type": "refresh"},
    ],
)
def test_wrong_claims_are_rejected(api_client, user, overrides):
    token = jwt.encode(_claims(user, **overrides), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    assert _get_me(api_client, token) == (401, "token_invalid")


# The forger's own PyJWT warns that our HS256 key is short for HS512; that is the forger's problem.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_hs512_with_the_right_key_is_rejected(api_client, user):
    token = jwt.encode(_claims(user), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512")
    assert _get_me(api_client, token) == (401, "token_invalid")


def test_another_key_is_rejected(api_client, user):
    token = jwt.encode(_claims(user), "not-our-signing-key-0123456789abcdef0123", algorithm="HS256")
    assert _get_me(api_client, token) == (401, "token_invalid")


def test_alg_none_is_rejected(api_client, user):
    def b64(part: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()

    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(_claims(user))}."
    assert _get_me(api_client, token) == (401, "token_invalid")


def test_no_token_is_not_authenticated(api_client, db):
    response = api_client.get(ME)
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "not_authenticated", "message": "Authentication credentials were not provided."}
    }


@pytest.mark.parametrize("sub", ["1", "not-a-uuid", 12345, "", None, ["x"]])
def test_a_validly_signed_token_naming_no_user_id_is_401_not_500(api_client, user, sub):
    claims = _claims(user, sub="placeholder")
    claims["sub"] = sub
    token = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    assert _get_me(api_client, token) == (401, "token_invalid")


@pytest.mark.parametrize("sub", ["1", "not-a-uuid", 12345])
def test_a_validly_signed_refresh_token_naming_no_user_id_is_401_not_500(api_client, user, sub):
    claims = _claims(user, token_type="refresh", exp=int((timezone.now() + timedelta(days=1)).timestamp()))
    claims["sub"] = sub
    token = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    response = api_client.post("/api/v1/auth/refresh", {"refresh": token}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"
