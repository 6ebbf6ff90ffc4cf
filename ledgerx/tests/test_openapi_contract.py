"""Schemathesis over LedgerX's own OpenAPI schema.

Every operation gets generated requests (valid and invalid) as an authenticated
customer with a PIN and a funded account. Each response must: not be a 5xx,
match its documented status codes, content type and body schema, carry an
X-Request-ID, and, when it is an error, be exactly the contract's envelope.
Rate limits are switched off here (they are tested on their own), otherwise the
generator would mostly meet 429s.
"""

import uuid

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts import services as identity
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

PIN = "2580"

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

# The access token of the current test's customer (set by the fixture). Handing
# it to schemathesis as the auth provider lets its own checks still try requests
# without, or with broken, credentials.
_current_access: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class _CustomerToken:
    def get(self, case, context):
        return _current_access.get("token", "not-yet-issued")

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _envelope_check(ctx, response, case):
    """Errors carry {"error": {"code", "message", ...}} and nothing else at the top."""
    headers = {name.lower() for name in response.headers}
    assert "x-request-id" in headers, "missing X-Request-ID"
    if response.status_code < 400:
        return None
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    if "fields" in error:
        assert error["code"] == "validation_error", body
        assert all(isinstance(v, list) for v in error["fields"].values()), body
    return None


@pytest.fixture
def _keep_test_connection():
    """Schemathesis calls the WSGI app directly, not through Django's test
    client, so (like that client) stop request signals from closing the test's
    database connection in the middle of its transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def customer(db, _keep_test_connection):
    from transactions.services import deposit_create
    from ledger.services import account_open

    user = UserFactory()
    identity.pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    account = account_open(actor=user, owner=user, currency="USD", name="main")
    deposit_create(actor=user, account=account, amount=1_000_000, idempotency_key=str(uuid.uuid4()))
    _current_access["token"] = identity.auth_login(email=user.email, password=DEFAULT_PASSWORD).access
    yield
    _current_access.clear()


@pytest.mark.slow
@pytest.mark.django_db
@override_settings(RATELIMIT_ENABLE=False)
@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_honours_its_schema_and_the_error_envelope(case, customer):
    # positive_data_acceptance is off: some rules are beyond JSON Schema
    # (password strength, weak PINs, metadata limits) and answer a documented 400.
    case.call_and_validate(
        additional_checks=[_envelope_check], excluded_checks=[positive_data_acceptance]
    )
