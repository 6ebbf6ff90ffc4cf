import pytest


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
