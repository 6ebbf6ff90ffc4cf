"""Writing events (the outbox), in the transaction of the change they record.

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
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from events.models import Delivery, Event, EventRecipient, WebhookEndpoint
from events.services.representations import account_representation, user_representation
from ledgerx.fastsql import array_literal, rows_insert
from ledgerx.ids import uuid7
from ledgerx.observability import metrics


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
            user_ids = array_literal(uuid.UUID(str(user_id)) for user_id in pending.user_ids)
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


def account_event_record(*, type: str, account) -> Event:
    return event_record(type=type, data=account_representation(account), user_ids=[account.owner_id])


def user_event_record(*, type: str, user) -> Event:
    return event_record(type=type, data=user_representation(user), user_ids=[user.pk])
