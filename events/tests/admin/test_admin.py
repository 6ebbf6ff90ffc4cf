"""The back office lists endpoints and deliveries and runs their actions through the audited services."""

import pytest
from django.urls import reverse

from accounts.tests.factories import AdminFactory
from audit.models import AuditRecord
from events.models import Delivery
from events.services.endpoints import endpoint_create
from events.worker.loop import deliveries_run
from ledger.tests.factories import customer_account
from transactions.services.money import deposit_create
from transactions.tests.helpers import new_key

pytestmark = pytest.mark.django_db


def test_admin_lists_filters_disables_and_resends(client, receiver):
    account = customer_account()
    endpoint, _ = endpoint_create(actor=account.owner, url=receiver.url)
    receiver.status = 500
    deposit_create(actor=account.owner, account=account, amount=10, idempotency_key=new_key())
    deliveries_run(worker_id="w")
    admin_user = AdminFactory()
    client.force_login(admin_user)
    page = client.get(reverse("admin:events_delivery_changelist") + "?status__exact=pending")
    assert page.status_code == 200 and "HTTP 500" in page.content.decode()
    assert client.get(reverse("admin:events_webhookendpoint_changelist") + "?failing=yes").status_code == 200
    assert client.get(reverse("admin:events_event_changelist")).status_code == 200
    delivery = Delivery.objects.get()
    receiver.status = 200
    response = client.post(
        reverse("admin:events_delivery_changelist"),
        {"action": "resend_deliveries", "_selected_action": [str(delivery.pk)]},
    )
    assert response.status_code == 302
    assert AuditRecord.objects.filter(action="webhook.delivery_retried", actor=admin_user).count() == 1
    assert deliveries_run(worker_id="w") == 1
    assert Delivery.objects.get().status == "succeeded"
    client.post(
        reverse("admin:events_webhookendpoint_changelist"),
        {"action": "disable_endpoints", "_selected_action": [str(endpoint.pk)]},
    )
    endpoint.refresh_from_db()
    assert (endpoint.status, endpoint.disabled_reason) == ("disabled", "Disabled by staff.")
    assert AuditRecord.objects.filter(action="webhook.endpoint_updated", actor=admin_user).count() == 1
