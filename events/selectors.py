"""Reads of events, endpoints and deliveries, always scoped to the user (others' -> NotFound)."""

from django.db.models import QuerySet

from events.models import Delivery, Event, WebhookEndpoint
from ledgerx.exceptions import NotFound


def event_list_for_user(*, user, type: str | None = None) -> QuerySet:
    """The user's events, newest first: a keyset walk of the recipients index (user, type?, event)."""
    filters = {"recipients__user": user}
    if type:
        filters["recipients__type"] = type
    return Event.objects.filter(**filters).order_by("-id")


def event_get_for_user(*, user, event_id) -> Event:
    event = Event.objects.filter(pk=event_id, recipients__user=user).first()
    if event is None:
        raise NotFound()
    return event


def endpoint_list_for_user(*, user) -> QuerySet:
    return WebhookEndpoint.objects.filter(owner=user).order_by("-created_at", "-id")


def endpoint_get_for_user(*, user, endpoint_id) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, owner=user).first()
    if endpoint is None:
        raise NotFound()
    return endpoint


def delivery_list_for_endpoint(*, endpoint: WebhookEndpoint) -> QuerySet:
    return Delivery.objects.filter(endpoint=endpoint).select_related("event").order_by("-id")


def delivery_get_for_endpoint(*, endpoint: WebhookEndpoint, delivery_id) -> Delivery:
    delivery = Delivery.objects.filter(pk=delivery_id, endpoint=endpoint).select_related("event").first()
    if delivery is None:
        raise NotFound()
    return delivery
