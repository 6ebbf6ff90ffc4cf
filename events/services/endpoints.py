"""Webhook endpoints: their owners' changes, each audited, and a delivery sent again on request."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.services.records import audit_record
from events.models import Delivery, EventType, WebhookEndpoint
from events.services.addresses import UnsafeUrl, url_resolve
from events.services.representations import timestamp_text
from events.signing import nonce_new, secret_for
from ledgerx.exceptions import InvalidState, ValidationFailed
from ledgerx.ids import uuid7
from ledgerx.text import text_error

PREVIOUS_SECRET_VALIDITY = timedelta(hours=24)
URL_MAX = 2000
DESCRIPTION_MAX = 500
ENDPOINTS_PER_USER_MAX = 20

# Audit actions of this app (strings: ``audit.models.AuditAction`` is a choice
# list for display; the column takes any action name).
AUDIT_ENDPOINT_CREATED = "webhook.endpoint_created"
AUDIT_ENDPOINT_UPDATED = "webhook.endpoint_updated"
AUDIT_ENDPOINT_DELETED = "webhook.endpoint_deleted"
AUDIT_SECRET_ROTATED = "webhook.secret_rotated"
AUDIT_ENDPOINT_DISABLED = "webhook.endpoint_disabled"
AUDIT_DELIVERY_RETRIED = "webhook.delivery_retried"


def _url_validate(url) -> str:
    if not isinstance(url, str) or not url or len(url) > URL_MAX:
        raise ValidationFailed(fields={"url": [f"Must be a URL of at most {URL_MAX} characters."]})
    try:
        url_resolve(url)
    except UnsafeUrl as exc:
        raise ValidationFailed(fields={"url": [str(exc)]}) from None
    return url


def _events_validate(events) -> list[str]:
    if not isinstance(events, list) or not all(isinstance(item, str) for item in events):
        raise ValidationFailed(fields={"events": ["Must be a list of event types."]})
    unknown = sorted(set(events) - set(EventType.values))
    if unknown:
        raise ValidationFailed(fields={"events": [f"Unknown event types: {', '.join(unknown)}."]})
    return sorted(set(events))


def _description_validate(description) -> str:
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
        raise ValidationFailed(fields={"description": [f"Must be a string of at most {DESCRIPTION_MAX} characters."]})
    if problem := text_error(description):
        raise ValidationFailed(fields={"description": [problem]})
    return description



def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return secret_for(endpoint_id=endpoint.pk, nonce=endpoint.secret_nonce)


def endpoint_create(*, actor, url: str, events: list | None = None, description: str = "") -> tuple[WebhookEndpoint, str]:
    """A new enabled endpoint of ``actor``; returns it and its secret (shown only now).

    Raises ValidationFailed (bad URL, unknown event type, too many endpoints).
    """
    url = _url_validate(url)
    events = _events_validate(events if events is not None else [])
    description = _description_validate(description)
    with transaction.atomic(durable=True):
        if WebhookEndpoint.objects.filter(owner=actor).count() >= ENDPOINTS_PER_USER_MAX:
            raise ValidationFailed(fields={"url": [f"At most {ENDPOINTS_PER_USER_MAX} endpoints per user."]})
        endpoint = WebhookEndpoint.objects.create(
            id=uuid7(), owner=actor, url=url, events=events, description=description, secret_nonce=nonce_new()
        )
        audit_record(
            actor=actor,
            action=AUDIT_ENDPOINT_CREATED,
            target_type="webhook_endpoint",
            target_id=endpoint.pk,
            data={"url": url, "events": events},
        )
    return endpoint, endpoint_secret(endpoint)


_UNSET = object()


def endpoint_update(
    *, actor, endpoint: WebhookEndpoint, url=_UNSET, events=_UNSET, description=_UNSET, status=_UNSET
) -> WebhookEndpoint:
    """Change what is given. Re-enabling clears the failing streak. Raises ValidationFailed."""
    changes = {}
    if url is not _UNSET:
        changes["url"] = _url_validate(url)
    if events is not _UNSET:
        changes["events"] = _events_validate(events)
    if description is not _UNSET:
        changes["description"] = _description_validate(description)
    if status is not _UNSET:
        if status not in WebhookEndpoint.Status.values:
            raise ValidationFailed(fields={"status": ["Must be enabled or disabled."]})
        changes["status"] = status
    with transaction.atomic(durable=True):
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        old = {name: getattr(locked, name) for name in changes}
        for name, value in changes.items():
            setattr(locked, name, value)
        if changes.get("status") == WebhookEndpoint.Status.ENABLED:
            locked.failing_since, locked.disabled_reason = None, ""
        elif changes.get("status") == WebhookEndpoint.Status.DISABLED and old["status"] != "disabled":
            locked.disabled_reason = "Disabled by its owner." if locked.owner_id == actor.pk else "Disabled by staff."
        locked.save()
        audit_record(
            actor=actor,
            action=AUDIT_ENDPOINT_UPDATED,
            target_type="webhook_endpoint",
            target_id=locked.pk,
            data={"old": old, "new": changes},
        )
    return locked


def endpoint_delete(*, actor, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint and its deliveries (the events stay)."""
    with transaction.atomic(durable=True):
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        audit_record(
            actor=actor,
            action=AUDIT_ENDPOINT_DELETED,
            target_type="webhook_endpoint",
            target_id=locked.pk,
            data={"url": locked.url},
        )
        locked.delete()


def endpoint_rotate_secret(*, actor, endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one keeps signing (beside the new) for 24 hours. Returns the new secret."""
    with transaction.atomic(durable=True):
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret_nonce = locked.secret_nonce
        locked.previous_secret_expires_at = timezone.now() + PREVIOUS_SECRET_VALIDITY
        locked.secret_nonce = nonce_new()
        locked.save(update_fields=["previous_secret_nonce", "previous_secret_expires_at", "secret_nonce"])
        audit_record(
            actor=actor,
            action=AUDIT_SECRET_ROTATED,
            target_type="webhook_endpoint",
            target_id=locked.pk,
            data={"previous_valid_until": timestamp_text(locked.previous_secret_expires_at)},
        )
    return locked, endpoint_secret(locked)


def delivery_retry(*, actor, delivery: Delivery) -> Delivery:
    """Send ``delivery`` again now (by the next worker pass), whatever its status.

    Raises InvalidState when its endpoint is disabled (enable it first).
    """
    with transaction.atomic(durable=True):
        locked = Delivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
        if locked.endpoint.status != WebhookEndpoint.Status.ENABLED:
            raise InvalidState("The endpoint is disabled; enable it before retrying a delivery.")
        old_status = locked.status
        locked.status = Delivery.Status.PENDING
        locked.next_attempt_at = timezone.now()
        locked.save(update_fields=["status", "next_attempt_at"])
        audit_record(
            actor=actor,
            action=AUDIT_DELIVERY_RETRIED,
            target_type="webhook_delivery",
            target_id=locked.pk,
            data={"endpoint": str(locked.endpoint_id), "event": str(locked.event_id), "old_status": old_status},
        )
    return locked
