"""The framework-level error classes all answer the contract's envelope."""

import json
import logging

import pytest
from django.test import override_settings
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from ledgerx.urls import urlpatterns as project_urls

REGISTER = "/api/v1/auth/register"


class _Boom(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("secret internal detail")


def _plain_django_boom(request):
    raise KeyError("another secret detail")


urlpatterns = [path("api/v1/_boom", _Boom.as_view()), path("api/v1/_plain_boom", _plain_django_boom)] + project_urls


@pytest.mark.django_db
def test_malformed_json_is_validation_error(client):
    response = client.post(REGISTER, data="{not json", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["message"] == "Malformed JSON body."
    assert set(body) == {"error"}


@pytest.mark.django_db
def test_non_json_content_type_is_validation_error(client):
    response = client.post(REGISTER, data="email=a@b.c", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.django_db
@override_settings(MAX_BODY_BYTES=1024)
def test_oversized_body_is_enveloped_413(client):
    body = json.dumps({"email": "a@example.com", "password": "x" * 5000, "full_name": "A"})
    response = client.post(REGISTER, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"error": {"code": "payload_too_large", "message": "The request body is too large."}}


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_unknown_api_path_is_404_for_every_method(client, method):
    response = getattr(client, method)("/api/v1/accounts/not-a-uuid/freeze", content_type="application/json")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_unknown_api_path_is_json_even_with_debug_on(client):
    response = client.get("/api/v2/anything")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_wrong_method_is_enveloped_405(client):
    response = client.get(REGISTER)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_missing_token_is_not_authenticated(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_garbage_token_is_token_invalid(client):
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("url", ["/api/v1/_boom", "/api/v1/_plain_boom"])
def test_unexpected_exception_is_500_without_details_and_logged_with_request_id(client, caplog, url):
    client.raise_request_exception = False
    with caplog.at_level(logging.ERROR, logger="ledgerx.errors"):
        response = client.get(url, HTTP_X_REQUEST_ID="trace-me-42")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "An unexpected error occurred."}}
    assert b"secret" not in response.content
    assert response["X-Request-ID"] == "trace-me-42"
    logged = [record for record in caplog.records if record.exc_info]
    assert logged, "the exception was not logged"
    assert "secret" in str(logged[0].exc_info[1])


@pytest.mark.django_db
def test_request_id_is_generated_when_absent_and_rejected_when_unsafe(client):
    generated = client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 36
    unsafe = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"]
    assert unsafe != "bad id\nwith newline" and len(unsafe) == 36
