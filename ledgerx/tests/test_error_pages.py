"""Errors outside the API (the admin) are HTML pages; the API keeps the JSON envelope."""

import json

import pytest
from django.contrib.auth.models import Permission

from accounts.tests.factories import AdminFactory, UserFactory
from ledger.admin import LedgerAccountAdmin

pytestmark = pytest.mark.django_db


def _assert_html(response, status: int) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        json.loads(response.content)


def _assert_envelope(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


def test_admin_404_is_a_page(client):
    client.force_login(AdminFactory())
    _assert_html(client.get("/admin/no-such-app/"), 404)
    _assert_html(client.get("/no-such-page"), 404)
    _assert_envelope(client.get("/api/v1/no-such-endpoint"), 404, "not_found")


def test_admin_403_is_a_page(client):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_ledgeraccount"))
    client.force_login(viewer)
    _assert_html(client.get("/admin/accounts/user/"), 403)


def test_admin_400_is_a_page(client):
    _assert_html(client.get("/admin/", HTTP_HOST="evil.example"), 400)
    _assert_envelope(client.get("/api/v1/me", HTTP_HOST="evil.example"), 400, "validation_error")


def test_admin_500_is_a_page_without_details(client, monkeypatch):
    def broken(self, request):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(LedgerAccountAdmin, "get_queryset", broken)
    client.force_login(AdminFactory())
    client.raise_request_exception = False
    response = client.get("/admin/ledger/ledgeraccount/")
    _assert_html(response, 500)
    assert b"secret" not in response.content
