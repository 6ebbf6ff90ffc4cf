"""Liveness, readiness (database and Redis probed) and the self-hosted API docs."""

import re
from unittest import mock

import pytest
from django.db.utils import OperationalError


@pytest.mark.django_db
def test_healthz_answers_ok_with_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["X-Request-ID"] == "req-123"


@pytest.mark.django_db
def test_unknown_api_path_is_enveloped_404(client):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}
    assert len(response["X-Request-ID"]) == 36


@pytest.mark.django_db
def test_readyz_ok_when_database_answers_and_no_redis_is_configured(client, settings):
    settings.REDIS_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_follows_redis_up_then_down(client, private_redis):
    up = client.get("/readyz")
    assert up.status_code == 200
    assert up.json()["checks"] == {"database": "ok", "cache": "ok"}

    private_redis.kill()
    private_redis.wait(timeout=10)

    down = client.get("/readyz")
    assert down.status_code == 503
    body = down.json()
    assert body["checks"] == {"database": "ok", "cache": "down"}
    assert body["error"]["code"] == "service_unavailable"
    assert client.get("/healthz").status_code == 200  # alive, just not ready


@pytest.mark.django_db
def test_readyz_503_when_the_database_does_not_answer(client):
    with mock.patch("ledgerx.api.health.connection.cursor", side_effect=OperationalError("down")):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "down"


def test_schema_is_openapi_3(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/transfers" in schema["paths"]


def test_docs_are_served_without_any_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in source for source in sources)
    external = [source for source in sources if source.startswith(("http://", "https://", "//"))]
    assert external == []
    # and the assets it names are really served by us
    bundle = next(source for source in sources if source.endswith("swagger-ui-bundle.js"))
    assert client.get(bundle).status_code == 200


@pytest.mark.django_db
def test_the_api_root_is_an_index_of_docs_schema_and_probes(client):
    response = client.get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "LedgerX API"
    assert body["links"] == {
        "docs": "http://testserver/api/docs/",
        "schema": "http://testserver/api/schema/",
        "health": "http://testserver/healthz",
        "ready": "http://testserver/readyz",
    }
    for url in body["links"].values():
        assert client.get(url.removeprefix("http://testserver")).status_code == 200


def test_the_api_root_refuses_other_methods_in_the_envelope(client):
    response = client.post("/api/v1/", data={}, content_type="application/json")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "method_not_allowed"
