"""Writing events (the outbox) and managing webhook endpoints.

Events are written only here, inside the transaction of the change they
record, so they commit or roll back with it: ``event_record`` (or
``events_write``) from a service's own atomic block, after the change is
written; or, for a new movement on PostgreSQL, ``events_statement_ctes``,
whose data-modifying CTEs ride in the movement function's own statement
(``transactions.movements``). Each event comes with its recipients and one
pending delivery per subscribed enabled endpoint of those recipients; on
PostgreSQL the INSERT selects the endpoints itself (one statement), on
SQLite they are looked up first. Each event's position in the log
(``Event.xid``, see ``events.models``) is taken while it is written: the
writing transaction's id on PostgreSQL, a serialized counter on SQLite.
The callers pass the object as the API shows it after the change (``data``)
and the users who may see it; this module imports no domain app, so every
app may call it (like ``audit``).
"""

import functools
import ipaddress
import json
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.services.records import audit_record
from events.models import Delivery, Event, EventRecipient, EventType, WebhookEndpoint
from events.signing import nonce_new, secret_for
from ledgerx.exceptions import InvalidState, ValidationFailed
from ledgerx.fastsql import rows_insert
from ledgerx.ids import uuid7
from ledgerx.observability import metrics
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


# --- Recording events ---------------------------------------------------------------


@dataclass(frozen=True)
class PendingEvent:
    """An event decided but not written yet: what a movement carries to its writer (``events_write``)."""

    type: str
    data: dict
    user_ids: tuple  # who sees it; no None


def pending_event(*, type: str, data: dict, user_ids: Iterable) -> PendingEvent:
    return PendingEvent(type=type, data=data, user_ids=tuple(dict.fromkeys(u for u in user_ids if u is not None)))


def transaction_event(*, type: str, data: dict, accounts: Iterable) -> PendingEvent:
    """A transaction's event, seen by the owners of its customer accounts (both sides of a transfer)."""
    return pending_event(type=type, data=data, user_ids=[account.owner_id for account in accounts if account is not None])


def event_record(*, type: str, data: dict, user_ids: Iterable) -> Event:
    """Record one event in the caller's transaction (required: outside one it would not be atomic).

    ``user_ids``: who sees it (owners of the accounts involved, or the user it
    is about); None entries (system accounts) are skipped.
    """
    return events_write([pending_event(type=type, data=data, user_ids=user_ids)])[0]


def transaction_event_record(*, type: str, data: dict, accounts: Iterable) -> Event:
    """``event_record`` of ``transaction_event``."""
    return events_write([transaction_event(type=type, data=data, accounts=accounts)])[0]


def events_write(events: Sequence[PendingEvent]) -> list[Event]:
    """Write ``events`` (each with its recipients and deliveries) in the caller's transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("Events must be written inside the transaction of the change they record.")
    if not events:
        return []
    transaction.on_commit(functools.partial(metrics.events_committed, events))
    if connection.vendor == "postgresql":
        ctes, params, written = events_statement_ctes(events)
        *head, (last_name, last_sql) = ctes
        prefix = ", ".join(f"{name} AS ({sql})" for name, sql in head)
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {prefix} {last_sql}" if prefix else last_sql, params)
        return [_written_event(*row) for row in written]
    written, rows = [], []
    xid = _serialized_position()
    for pending in events:
        event, event_rows = _event_rows(pending, xid=xid)
        written.append(event)
        rows += event_rows
        if pending.user_ids:
            endpoints = WebhookEndpoint.objects.filter(
                owner_id__in=pending.user_ids, status=WebhookEndpoint.Status.ENABLED
            ).values_list("id", "events")
            rows += [
                Delivery(id=uuid7(), event=event, endpoint_id=endpoint_id, next_attempt_at=event.created_at,
                         created_at=event.created_at, xid=event.xid)
                for endpoint_id, types in endpoints
                if not types or event.type in types
            ]
    rows_insert(*rows)
    return written


# PostgreSQL: the position of an event (``Event.xid``) is the writing transaction's id, taken by
# the INSERT itself (as bigint: an xid8 is the epoch and the xid, far below 2^63).
WRITER_XID_SQL = "pg_current_xact_id()::text::bigint"
_XID_IN_STATEMENT = {"xid": WRITER_XID_SQL}


def _serialized_position() -> int:
    """SQLite: the position of the events written now, one past the largest rowid of the events table.

    SQLite serializes writers (``BEGIN IMMEDIATE`` takes the write lock before
    the transaction reads), so a number taken while writing is in commit
    order: every committed event has a position at most the rowid it was
    stored under, hence below this one. Events are never deleted, so rowids
    never go back. ``MAX(rowid)`` reads one page of the table's b-tree.
    """
    with connection.cursor() as cursor:
        cursor.execute('SELECT COALESCE(MAX(rowid), 0) + 1 FROM "events_event"')
        return cursor.fetchone()[0]


def _written_event(id, type: str, created_at, data: dict) -> Event:
    """The saved ``Event`` of a row ``events_statement_ctes`` wrote (its ``xid`` stays unknown: None)."""
    event = Event(id=id, type=type, created_at=created_at, data=data, xid=None)
    event._state.adding, event._state.db = False, connection.alias
    return event


def _event_rows(pending: PendingEvent, *, xid: int | None = None) -> tuple[Event, list]:
    """The event and its recipients' rows; ``xid`` None: the statement writing them takes it (PostgreSQL)."""
    event = Event(id=uuid7(), type=pending.type, created_at=timezone.now(), data=pending.data, xid=xid)
    recipients = [
        EventRecipient(event=event, user_id=user_id, type=pending.type, xid=xid) for user_id in pending.user_ids
    ]
    return event, [event, *recipients]


def events_statement_ctes(
    events: Sequence[PendingEvent], *, data_sql: str | None = None
) -> tuple[list[tuple[str, str]], list, list[tuple]]:
    """PostgreSQL: ``events`` as data-modifying CTEs ``[(name, sql)]`` with their parameters, and what was written.

    A writer puts them in front of its own statement (``WITH <ctes> <its
    statement>``: the movement function's call), so the events commit or roll
    back with it and cost no round trip of their own. Per event, at most three
    CTEs of a fixed shape: the event, its recipients (one INSERT over an array
    of user ids, however many), and its deliveries, selected by the INSERT
    itself from the recipients' subscribed enabled endpoints. Each row's
    position (``xid``) is the transaction's id, taken by the INSERT. Every
    parameter is typed by a cast, so the statement can be prepared. No model
    instance is built: this is the movements' hot path.
    ``data_sql``: an SQL expression wrapping each event's data (``%s``), for
    what only the writer's statement knows (the movement's booking moment).
    Returns ``(id, type, created_at, data)`` of each event written, in order.
    """
    xid_sql = _XID_IN_STATEMENT["xid"]
    event_sql, recipients_sql, fanout_sql = _statement_texts(data_sql or "%s::jsonb", xid_sql)
    ctes, params, written = [], [], []
    for pending in events:
        event_id, created_at = uuid7(), timezone.now()
        written.append((event_id, pending.type, created_at, pending.data))
        ctes.append((f"e{len(ctes)}", event_sql))
        params += [event_id, pending.type, created_at, json.dumps(pending.data)]
        if pending.user_ids:
            user_ids = [uuid.UUID(str(user_id)) for user_id in pending.user_ids]
            ctes.append((f"e{len(ctes)}", recipients_sql))
            params += [event_id, pending.type, user_ids]
            ctes.append((f"e{len(ctes)}", fanout_sql))
            params += [str(event_id), event_id, created_at, created_at, user_ids, json.dumps([pending.type])]
    return ctes, params, written


@functools.cache
def _statement_texts(data_sql: str, xid_sql: str) -> tuple[str, str, str]:
    """The event, recipients and fan-out INSERTs of ``events_statement_ctes`` for one data wrapper and position."""
    event_sql = (
        'INSERT INTO "events_event" ("id", "type", "created_at", "data", "xid") '
        f"VALUES (%s::uuid, %s::varchar, %s::timestamptz, {data_sql}, {xid_sql})"
    )
    recipients_sql = (
        'INSERT INTO "events_eventrecipient" ("event_id", "user_id", "type", "xid") '
        f"SELECT %s::uuid, u, %s::varchar, {xid_sql} FROM unnest(%s::uuid[]) AS u"
    )
    fanout_sql = (
        'INSERT INTO "events_delivery" ("id", "event_id", "endpoint_id", "status", "attempts", "next_attempt_at", '
        '"claimed_until", "claimed_by", "last_attempt_at", "last_status_code", "last_duration_ms", "last_error", '
        '"delivered_at", "created_at", "xid") '
        # A delivery id shares its event's UUIDv7 time prefix (so deliveries sort as their events
        # do) with a random tail (the RFC 4122 variant bits come with it).
        "SELECT (substr(%s::text, 1, 19) || substr(gen_random_uuid()::text, 20))::uuid, %s::uuid, e.id, 'pending', 0, "
        f"%s::timestamptz, NULL, '', NULL, NULL, NULL, '', NULL, %s::timestamptz, {xid_sql} "
        'FROM "events_webhookendpoint" e WHERE e.owner_id = ANY(%s::uuid[]) AND e.status = \'enabled\' '
        "AND (e.events = '[]'::jsonb OR e.events @> %s::jsonb)"
    )
    return event_sql, recipients_sql, fanout_sql


def account_representation(account) -> dict:
    """The account as ``GET accounts/{id}`` shows it (plain Python: domain code uses no DRF)."""
    return {
        "id": str(account.pk),
        "number": account.number,
        "name": account.name,
        "currency": account.currency,
        "status": account.status,
        "balance": {"posted": account.posted, "pending": account.pending, "available": account.posted - account.pending},
        "created_at": timestamp_text(account.created_at),
    }


def user_representation(user) -> dict:
    """The user as ``GET me`` shows it."""
    return {
        "id": str(user.pk),
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "status": user.status,
        "pin_set": user.pin_set,
    }


def account_event_record(*, type: str, account) -> Event:
    return event_record(type=type, data=account_representation(account), user_ids=[account.owner_id])


def user_event_record(*, type: str, user) -> Event:
    return event_record(type=type, data=user_representation(user), user_ids=[user.pk])


def event_representation(event: Event) -> dict:
    return {"id": str(event.pk), "type": event.type, "created_at": timestamp_text(event.created_at), "data": event.data}


def timestamp_text(value) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# --- URL rules ----------------------------------------------------------------------


class UnsafeUrl(Exception):
    """The URL is not https, or it points at a private, loopback or link-local address."""


def _address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved)


def url_resolve(url: str) -> tuple[str, str, int, list[str]]:
    """(scheme, host, port, addresses to connect to) of a webhook URL, or UnsafeUrl.

    Called when the endpoint is saved and again before every delivery, whose
    connection then goes to one of exactly these addresses: a DNS answer that
    changes to a private address after the check (rebinding) is never used.
    ``settings.WEBHOOKS_ALLOW_INSECURE`` allows http and any address.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"Not a valid URL ({exc}).") from None
    insecure = settings.WEBHOOKS_ALLOW_INSECURE
    allowed_schemes = ("https", "http") if insecure else ("https",)
    if parts.scheme not in allowed_schemes:
        raise UnsafeUrl("The URL must use https.")
    host = parts.hostname
    if not host or parts.username or parts.password:
        raise UnsafeUrl("The URL needs a host and must not carry credentials.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeUrl(f"The host {host} does not resolve.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not insecure and (not addresses or not all(_address_allowed(address) for address in addresses)):
        raise UnsafeUrl("The URL must not point at a private, loopback or link-local address.")
    return parts.scheme, host, port, addresses


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


# --- Endpoints ----------------------------------------------------------------------


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
