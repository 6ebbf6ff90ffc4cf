"""GET /metrics: who may scrape it, and exact counts for a known workload."""

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from ledger.tests.factories import customer_account
from ledger.tests.fixtures import client_for  # noqa: F401
from transactions.tests.helpers import PIN, user_with_pin

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-tests"


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client, token=TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    with override_settings(METRICS_TOKEN=TOKEN):
        return client.get("/metrics", **headers)


def samples(text: str) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_are_off_without_a_token(api_client):
    response = api_client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN + "x"])
def test_metrics_refuse_a_scrape_without_the_token(api_client, token):
    response = scrape(api_client, token=token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "not_authenticated"
    assert b"ledgerx_" not in response.content


def test_a_known_workload_is_counted_exactly(client_for, django_capture_on_commit_callbacks):
    payer, payee = user_with_pin(), user_with_pin()
    source = customer_account(owner=payer)
    destination = customer_account(owner=payee)
    client = client_for(payer)
    deposits = {"route": "api/v1/deposits", "method": "POST"}
    transfers = {"route": "api/v1/transfers", "method": "POST"}
    before = {
        "deposit_2xx": value("ledgerx_http_requests_total", **deposits, status="2xx"),
        "transfer_2xx": value("ledgerx_http_requests_total", **transfers, status="2xx"),
        "transfer_4xx": value("ledgerx_http_requests_total", **transfers, status="4xx"),
        "deposit_seconds": value("ledgerx_http_request_duration_seconds_count", **deposits),
        "insufficient": value("ledgerx_api_errors_total", code="insufficient_funds", status="409"),
        "invalid_pin": value("ledgerx_api_errors_total", code="invalid_pin", status="403"),
        "pin_failures": value("ledgerx_pin_failures_total"),
        "replayed": value("ledgerx_idempotency_total", outcome="replayed"),
        "reused": value("ledgerx_idempotency_total", outcome="key_reused"),
        "deposits": value("ledgerx_movements_total", type="deposit", currency="USD"),
        "transfers": value("ledgerx_movements_total", type="transfer", currency="USD"),
        "moved": value("ledgerx_moved_minor_units_total", type="transfer", currency="USD"),
        "holds": value("ledgerx_holds_total", outcome="opened"),
        "batches": value("ledgerx_batch_items_count"),
        "batch_ok": value("ledgerx_batch_item_outcomes_total", outcome="ok"),
        "batch_failed": value("ledgerx_batch_item_outcomes_total", outcome="failed"),
    }
    commits = django_capture_on_commit_callbacks(execute=True)
    commits.__enter__()

    deposit = {"account": str(source.pk), "amount": 5_000}
    assert client.post("/api/v1/deposits", deposit, format="json", HTTP_IDEMPOTENCY_KEY="d-1").status_code == 201
    replay = client.post("/api/v1/deposits", deposit, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    other = {**deposit, "amount": 6_000}
    assert client.post("/api/v1/deposits", other, format="json", HTTP_IDEMPOTENCY_KEY="d-1").status_code == 422
    transfer = {"source_account": str(source.pk), "destination_account": str(destination.pk), "pin": PIN}
    ok = client.post("/api/v1/transfers", {**transfer, "amount": 1_000}, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
    assert ok.status_code == 201
    broke = client.post("/api/v1/transfers", {**transfer, "amount": 9_000}, format="json", HTTP_IDEMPOTENCY_KEY="t-2")
    assert broke.json()["error"]["code"] == "insufficient_funds"
    wrong = client.post(
        "/api/v1/transfers", {**transfer, "amount": 1, "pin": "9513"}, format="json", HTTP_IDEMPOTENCY_KEY="t-3"
    )
    assert wrong.json()["error"]["code"] == "invalid_pin"
    hold = {**transfer, "amount": 10, "hold": True}
    assert client.post("/api/v1/transfers", hold, format="json", HTTP_IDEMPOTENCY_KEY="t-4").status_code == 201
    batch = {"atomic": False, "pin": PIN, "items": [
        {"type": "transfer", "source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 5},
        {"type": "transfer", "source_account": str(source.pk), "destination_account": str(destination.pk), "amount": 10**9},
    ]}
    assert client.post("/api/v1/batches", batch, format="json", HTTP_IDEMPOTENCY_KEY="b-1").status_code == 201
    commits.__exit__(None, None, None)

    assert value("ledgerx_movements_total", type="deposit", currency="USD") - before["deposits"] == 1
    assert value("ledgerx_movements_total", type="transfer", currency="USD") - before["transfers"] == 2
    assert value("ledgerx_moved_minor_units_total", type="transfer", currency="USD") - before["moved"] == 1_005
    assert value("ledgerx_holds_total", outcome="opened") - before["holds"] == 1
    assert value("ledgerx_batch_items_count") - before["batches"] == 1
    assert value("ledgerx_batch_item_outcomes_total", outcome="ok") - before["batch_ok"] == 1
    assert value("ledgerx_batch_item_outcomes_total", outcome="failed") - before["batch_failed"] == 1

    assert value("ledgerx_http_requests_total", **deposits, status="2xx") - before["deposit_2xx"] == 2
    assert value("ledgerx_http_request_duration_seconds_count", **deposits) - before["deposit_seconds"] == 3
    assert value("ledgerx_http_requests_total", **transfers, status="2xx") - before["transfer_2xx"] == 2  # with the hold
    assert value("ledgerx_http_requests_total", **transfers, status="4xx") - before["transfer_4xx"] == 2
    assert value("ledgerx_api_errors_total", code="insufficient_funds", status="409") - before["insufficient"] == 1
    assert value("ledgerx_api_errors_total", code="invalid_pin", status="403") - before["invalid_pin"] == 1
    assert value("ledgerx_pin_failures_total") - before["pin_failures"] == 1
    assert value("ledgerx_idempotency_total", outcome="replayed") - before["replayed"] == 1
    assert value("ledgerx_idempotency_total", outcome="key_reused") - before["reused"] == 1

    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    scraped = samples(response.content.decode())
    key = ("ledgerx_http_requests_total", tuple(sorted({**transfers, "status": "4xx"}.items())))
    assert scraped[key] == value("ledgerx_http_requests_total", **transfers, status="4xx")
    assert scraped[("ledgerx_holds_open", ())] == 1
    assert scraped[("ledgerx_approvals_pending", ())] == 0


def test_route_labels_never_carry_ids(client_for):
    user = user_with_pin()
    account = customer_account(owner=user)
    client = client_for(user)
    assert client.get(f"/api/v1/accounts/{account.pk}").status_code == 200
    assert client.get("/api/v1/no-such-thing/123").status_code == 404
    text = scrape(client).content.decode()
    assert str(account.pk) not in text
    assert 'route="api/v1/accounts/<uuid_ci:account_id>"' in text
    assert "no-such-thing" not in text


def test_webhook_attempts_are_counted_by_outcome(client_for, monkeypatch):
    """The worker counts each attempt (delivered or failed), its duration and, on a first attempt, its lag."""
    from events.worker import claiming, sending
    from events.models import Delivery
    from events.services.endpoints import endpoint_create

    user = user_with_pin()
    account = customer_account(owner=user)
    with override_settings(WEBHOOKS_ALLOW_INSECURE=True):
        endpoint, _secret = endpoint_create(actor=user, url="http://127.0.0.1:9/hook")
    client_for(user).post("/api/v1/deposits", {"account": str(account.pk), "amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY="w-1")
    delivery = Delivery.objects.select_related("event", "endpoint").get(endpoint=endpoint)
    before = {
        "delivered": value("ledgerx_webhook_deliveries_total", outcome="delivered"),
        "failed": value("ledgerx_webhook_deliveries_total", outcome="failed"),
        "lag": value("ledgerx_webhook_delivery_lag_seconds_count"),
    }
    answers = iter([500, 204])
    monkeypatch.setattr(sending, "_post", lambda url, body, headers, timeout: next(answers))
    with override_settings(WEBHOOKS_ALLOW_INSECURE=True):
        assert claiming.deliveries_claim(worker_id="w", limit=10) == [delivery.pk]
        assert sending.delivery_attempt(delivery, worker_id="w") is False
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        assert claiming.deliveries_claim(worker_id="w", limit=10) == [delivery.pk]
        delivery = Delivery.objects.select_related("event", "endpoint").get(pk=delivery.pk)
        assert delivery.attempts == 1
        assert sending.delivery_attempt(delivery, worker_id="w") is True
    assert value("ledgerx_webhook_deliveries_total", outcome="failed") - before["failed"] == 1
    assert value("ledgerx_webhook_deliveries_total", outcome="delivered") - before["delivered"] == 1
    assert value("ledgerx_webhook_delivery_lag_seconds_count") - before["lag"] == 1  # first attempts only
