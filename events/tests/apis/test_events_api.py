"""GET events, webhook endpoints CRUD, rotation, deliveries and retry over HTTP."""

import pytest
from standardwebhooks.webhooks import Webhook

from accounts.tests.factories import UserFactory
from audit.models import AuditRecord
from events.models import Delivery, Event, WebhookEndpoint
from events.worker.loop import deliveries_run
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = pytest.mark.django_db


def test_get_events_shows_both_sides_newest_first_and_filters_by_type(client_for):
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    third = funded_account(amount=0)
    txn = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=300, pin=PIN, idempotency_key=new_key()
    ).transaction
    for user, expected in ((source.owner, 2), (destination.owner, 1)):
        body = client_for(user).get("/api/v1/events").json()
        assert len(body["results"]) == expected
        newest = body["results"][0]
        assert set(newest) == {"id", "type", "created_at", "data"}
        assert (newest["type"], newest["data"]["id"], newest["data"]["amount"]) == ("transaction.created", str(txn.pk), 300)
    assert [event["data"]["type"] for event in client_for(source.owner).get("/api/v1/events").json()["results"]] == [
        "transfer", "deposit"
    ]
    client = client_for(third.owner)
    assert str(txn.pk) not in {event["data"]["id"] for event in client.get("/api/v1/events").json()["results"]}
    event_id = Event.objects.filter(data__id=str(txn.pk)).get().pk
    response = client.get(f"/api/v1/events/{event_id}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert client_for(destination.owner).get(f"/api/v1/events/{event_id}").json()["data"]["id"] == str(txn.pk)
    filtered = client_for(source.owner).get("/api/v1/events?type=account.frozen").json()
    assert filtered["results"] == []
    bad = client_for(source.owner).get("/api/v1/events?type=nope")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


def test_events_paginate_with_a_cursor(client_for):
    account = funded_account(amount=1)
    from transactions.services.money import deposit_create

    for _ in range(4):
        deposit_create(actor=account.owner, account=account, amount=1, idempotency_key=new_key())
    client = client_for(account.owner)
    first = client.get("/api/v1/events?page_size=2").json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    ids = [event["id"] for page in (first, second, third) for event in page["results"]]
    assert ids == [str(pk) for pk in Event.objects.order_by("-id").values_list("id", flat=True)]
    assert len(ids) == 5 and third["next"] is None


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.1/hook",
        "https://169.254.169.254/latest",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://user:pw@93.184.215.14/hook",
        "not a url",
    ],
)
def test_unsafe_urls_are_refused(client_for, url):
    response = client_for(UserFactory()).post("/api/v1/webhook-endpoints", {"url": url}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error" and "url" in response.json()["error"]["fields"]
    assert WebhookEndpoint.objects.count() == 0


def test_endpoint_crud_rotate_and_owner_only(client_for, settings):
    settings.WEBHOOKS_ALLOW_INSECURE = True
    owner, other = UserFactory(), UserFactory()
    client = client_for(owner)
    created = client.post(
        "/api/v1/webhook-endpoints",
        {"url": "http://127.0.0.1:8189/h", "events": ["transaction.created"], "description": "mine"},
        format="json",
    )
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["status"] == "enabled" and body["events"] == ["transaction.created"]
    endpoint_id = body["id"]
    shown = client.get(f"/api/v1/webhook-endpoints/{endpoint_id}").json()
    assert "secret" not in shown and shown["url"] == "http://127.0.0.1:8189/h"
    assert [item["id"] for item in client.get("/api/v1/webhook-endpoints").json()["results"]] == [endpoint_id]
    patched = client.patch(f"/api/v1/webhook-endpoints/{endpoint_id}", {"status": "disabled", "events": []}, format="json")
    assert (patched.status_code, patched.json()["status"], patched.json()["events"]) == (200, "disabled", [])
    rotated = client.post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret")
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (body["secret"],)
    intruder = client_for(other)
    for response in (
        intruder.get(f"/api/v1/webhook-endpoints/{endpoint_id}"),
        intruder.patch(f"/api/v1/webhook-endpoints/{endpoint_id}", {"status": "enabled"}, format="json"),
        intruder.post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret"),
        intruder.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries"),
        intruder.delete(f"/api/v1/webhook-endpoints/{endpoint_id}"),
    ):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert intruder.get("/api/v1/webhook-endpoints").json()["results"] == []
    client_for(owner)
    assert client.delete(f"/api/v1/webhook-endpoints/{endpoint_id}").status_code == 204
    assert WebhookEndpoint.objects.count() == 0
    actions = list(AuditRecord.objects.filter(target_id=endpoint_id).order_by("at").values_list("action", flat=True))
    assert actions == [
        "webhook.endpoint_created", "webhook.endpoint_updated", "webhook.secret_rotated", "webhook.endpoint_deleted"
    ]


def test_deliveries_listing_and_manual_retry_over_http(client_for, receiver):
    account = funded_account(amount=0)
    client = client_for(account.owner)
    body = client.post("/api/v1/webhook-endpoints", {"url": receiver.url}, format="json").json()
    from transactions.services.money import deposit_create

    receiver.status = 500
    deposit_create(actor=account.owner, account=account, amount=42, idempotency_key=new_key())
    deliveries_run(worker_id="w")
    listed = client.get(f"/api/v1/webhook-endpoints/{body['id']}/deliveries").json()["results"]
    assert len(listed) == 1
    item = listed[0]
    assert (item["status"], item["attempts"], item["status_code"], item["error"]) == ("pending", 1, 500, "HTTP 500")
    assert item["next_retry_at"] is not None and item["event_type"] == "transaction.created"
    receiver.status = 200
    retried = client_for(account.owner).post(f"/api/v1/webhook-endpoints/{body['id']}/deliveries/{item['id']}/retry")
    assert retried.status_code == 202
    assert deliveries_run(worker_id="w") == 1
    (got,) = receiver.received
    assert Webhook(body["secret"]).verify(got.body, got.headers)["data"]["amount"] == 42
    assert Delivery.objects.get().status == "succeeded"
    assert AuditRecord.objects.filter(action="webhook.delivery_retried", target_id=item["id"]).count() == 1


def test_a_page_size_that_is_not_an_integer_is_a_400(client_for):
    client = client_for(UserFactory())
    for path in ("/api/v1/events", "/api/v1/webhook-endpoints"):
        response = client.get(f"{path}?page_size=abc")
        assert response.status_code == 400 and "page_size" in response.json()["error"]["fields"]
    assert client.get("/api/v1/events?page_size=5000").status_code == 400  # past the maximum: no silent clamp
    assert client.get("/api/v1/events?page_size=0").status_code == 400
