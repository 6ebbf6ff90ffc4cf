"""Schemathesis over LedgerX's own OpenAPI schema, every check on (the CLI's ``--checks all``).

Every operation gets generated requests (valid and invalid, schemathesis's
examples, coverage and fuzzing phases): the customer operations as a customer
with a PIN and a funded account, the back-office ones as an admin. Each
response must: not be a 5xx, match its documented status codes, headers,
content type and body schema (so an error ``code`` outside its operation's enum
fails), carry an X-Request-ID, and, when it is an error, be exactly the
contract's envelope. Rate limits are switched off here (they are tested on
their own), otherwise the generator would mostly meet 429s. On PostgreSQL,
where production runs; bounded to well under a minute.
"""

import uuid
from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from rest_framework_simplejwt.tokens import AccessToken
from schemathesis.config import SchemathesisConfig

from accounts import services as identity
from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD, AdminFactory, UserFactory

PIN = "2580"
CUSTOMER_ID = uuid.UUID("0192f1a4-0000-7000-8000-00000000c001")
ADMIN_ID = uuid.UUID("0192f1a4-0000-7000-8000-00000000a001")

# Valid data may still be refused by rules beyond JSON Schema: password strength and
# weak PINs (400), a generated account of another currency (400), a key reused with
# another generated body (422). Everything else schema-valid must be accepted.
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409", "422"]}}}
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)


def _token(user_id) -> str:
    """An access token for the user the fixture creates with this id.

    Schemathesis builds some cases (its coverage phase) at collection, before
    any fixture ran, and puts the credentials on them then: so the tokens are
    signed up front for fixed user ids, long-lived enough for any suite.
    """
    token = AccessToken.for_user(User(pk=user_id))
    token.set_exp(lifetime=timedelta(hours=12))
    return str(token)


_TOKENS = {"customer": _token(CUSTOMER_ID), "admin": _token(ADMIN_ID)}


@schema.auth(refresh_interval=None)
class _RoleToken:
    """The admin's token on back-office paths, the customer's elsewhere. Schemathesis's
    own checks still try every request without, or with broken, credentials."""

    def get(self, case, context):
        return _TOKENS["admin" if case.path.startswith("/api/v1/admin/") else "customer"]

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
def world(db, _keep_test_connection):
    from ledger.services.customer_accounts import account_open
    from transactions.services.money import deposit_create

    user = UserFactory(id=CUSTOMER_ID)
    identity.pin_set(user=user, pin=PIN, password=DEFAULT_PASSWORD)
    account = account_open(actor=user, owner=user, currency="USD", name="main")
    deposit_create(actor=user, account=account, amount=1_000_000, idempotency_key=str(uuid.uuid4()))
    AdminFactory(id=ADMIN_ID)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db
@override_settings(RATELIMIT_ENABLE=False)
@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_honours_its_schema_and_the_error_envelope(case, world):
    case.call_and_validate(additional_checks=[_envelope_check])
