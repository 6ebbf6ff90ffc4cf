"""The client IP taken from X-Forwarded-For is always a bare address (it reaches an inet column)."""

import json

import pytest
from django.test import override_settings

from accounts.tests.factories import UserFactory
from audit.models import AuditRecord

pytestmark = pytest.mark.django_db


@override_settings(TRUSTED_PROXY_COUNT=1)
@pytest.mark.parametrize(
    "entry, recorded",
    [
        ("192.0.2.7", "192.0.2.7"),
        ("192.0.2.7:51234", "192.0.2.7"),  # proxies that append the port
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("2001:db8::7", "2001:db8::7"),
        ("not-an-ip", "10.0.0.2"),  # anything else: the proxy's own address
        ("fe80::1%eth0", "10.0.0.2"),
        ("unknown", "10.0.0.2"),
    ],
)
def test_forwarded_entries_are_recorded_as_addresses(client, entry, recorded):
    # PostgreSQL's inet column refused the raw entry: every audited request was a 500.
    user = UserFactory()
    response = client.post(
        "/api/v1/auth/login",
        json.dumps({"email": user.email, "password": "wrong-password-1"}),
        content_type="application/json",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR=f"203.0.113.9, {entry}",
    )
    assert response.status_code == 401
    assert list(AuditRecord.objects.values_list("ip", flat=True)) == [recorded]
