"""Every identity error renders the contract's envelope with its code and status."""

import pytest
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from accounts import exceptions
from ledgerx.urls import urlpatterns as project_urls


def _raiser(error):
    class Raise(APIView):
        authentication_classes: list = []
        permission_classes = [AllowAny]

        def get(self, request):
            raise error

    return Raise.as_view()


CASES = [
    (
        exceptions.InvalidCredentials(),
        401,
        {"code": "invalid_credentials", "message": "The email or password is incorrect."},
    ),
    (exceptions.TokenInvalid(), 401, {"code": "token_invalid", "message": "The token is invalid, expired or revoked."}),
    (exceptions.PinNotSet(), 403, {"code": "pin_not_set", "message": "Set a transaction PIN before moving money."}),
    (
        exceptions.InvalidPin(attempts_remaining=2),
        403,
        {"code": "invalid_pin", "message": "The transaction PIN is incorrect.", "attempts_remaining": 2},
    ),
    (
        exceptions.UserSuspended(),
        403,
        {
            "code": "user_suspended",
            "message": "This user is suspended; money cannot be moved until an administrator reinstates it.",
        },
    ),
    (
        exceptions.WeakPin(),
        400,
        {"code": "weak_pin", "message": "This PIN is too easy to guess; avoid repeated digits and runs like 1234."},
    ),
    (exceptions.EmailTaken(), 409, {"code": "email_taken", "message": "A user with this email already exists."}),
]

urlpatterns = [path(f"raise/{index}", _raiser(error)) for index, (error, _, _) in enumerate(CASES)] + project_urls


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("index", range(len(CASES)))
def test_identity_error_envelope(client, db, index):
    _, status, error = CASES[index]
    response = client.get(f"/raise/{index}")
    assert response.status_code == status
    assert response.json() == {"error": error}
    assert response["Content-Type"] == "application/json"
