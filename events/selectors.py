"""Reads of events, endpoints and deliveries, always scoped to the user (others' -> NotFound)."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from events.models import Delivery, Event, EventRecipient, WebhookEndpoint
from ledgerx.exceptions import NotFound

_R = '"events_eventrecipient"'
_HORIZON = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
_OWN = "pg_current_xact_id_if_assigned()::text::bigint"
# PostgreSQL: only events below the horizon of running transactions are listed (events.models),
# and the reading transaction's own. The first bound is the same rule as an index condition
# (the own xid, when there is one, is at or above the horizon).
_LISTED = RawSQL(
    f'{_R}."xid" <= COALESCE({_OWN}, {_HORIZON} - 1) AND ({_R}."xid" < {_HORIZON} OR {_R}."xid" = {_OWN})',
    [],
    output_field=BooleanField(),
)


@dataclass(frozen=True)
class EventPosition:
    """A keyset position in the event log: an event's (xid, id)."""

    xid: int
    id: object


def _beyond(position: EventPosition, comparison: str) -> RawSQL:
    event_id = EventRecipient._meta.get_field("event").target_field.get_db_prep_value(position.id, connection)
    return RawSQL(f'({_R}."xid", {_R}."event_id") {comparison} (%s, %s)', [position.xid, event_id],
                  output_field=BooleanField())


def event_page_for_user(
    *, user, limit: int, type: str | None = None, before: EventPosition | None = None,
    after: EventPosition | None = None,
) -> list[Event]:
    """Up to ``limit`` of the user's events, newest first: a keyset walk of the recipients index (user, type?, xid, event).

    Newest first is the log's order, (xid, id), read backwards. ``before``:
    strictly older than that position (the next page); ``after``: strictly
    newer (the previous page, still returned newest first). A position is
    compared as a row, so the walk starts in the index at the cursor.
    """
    rows = EventRecipient.objects.filter(user=user).select_related("event")
    if type:
        rows = rows.filter(type=type)
    if connection.vendor == "postgresql":
        rows = rows.filter(_LISTED)
    if before is not None:
        rows = rows.filter(_beyond(before, "<"))
    if after is not None:
        rows = rows.filter(_beyond(after, ">"))
        return [row.event for row in rows.order_by("xid", "event_id")[:limit]][::-1]
    return [row.event for row in rows.order_by("-xid", "-event_id")[:limit]]


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
