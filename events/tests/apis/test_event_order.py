"""GET events lists the log in an order that only grows at its newest end: a reader never misses an event.

The PostgreSQL tests hold a real transaction open after it wrote an event
while others commit, and read in between. On PostgreSQL an event is listed
once every transaction that started writing before it has ended, on the
whole server (other databases' test runs included), so the readers poll with
a deadline instead of reading once.
"""

import threading
import time
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import UserFactory
from events.models import Event, EventType
from events.services import recording
from events.services.recording import event_record

DEADLINE = 30  # seconds for the horizon of running transactions to pass the events


def _record(user, n: int):
    with transaction.atomic():
        return event_record(type=EventType.ACCOUNT_FROZEN, data={"n": n}, user_ids=[user.pk])


def _walk(client, url="/api/v1/events?page_size=1") -> list[str]:
    """Every listed event, newest first, through the ``next`` links."""
    ids = []
    while url:
        body = client.get(url).json()
        ids += [event["id"] for event in body["results"]]
        url = body["next"]
    return ids


def _new_from_the_top(client, seen: list[str]) -> list[str]:
    """A poller's read: from the newest event down to the newest one it already has."""
    new, url = [], "/api/v1/events?page_size=1"
    while url:
        body = client.get(url).json()
        for event in body["results"]:
            if event["id"] in seen:
                return new
            new.append(event["id"])
        url = body["next"]
    return new


def _until(predicate):
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, "the events were not listed in time"
        time.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_whose_transaction_commits_late_is_not_listed_behind_a_position_already_read(client_for):
    user = UserFactory()
    client = client_for(user)
    old = str(_record(user, 0).pk)
    _until(lambda: _walk(client) == [old])
    written, release, failure = threading.Event(), threading.Event(), []

    def slow_writer():
        try:
            with transaction.atomic():
                event_record(type=EventType.ACCOUNT_FROZEN, data={"n": 1}, user_ids=[user.pk])
                written.set()
                release.wait(DEADLINE)
        except Exception as exc:  # reported by the main thread
            failure.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert written.wait(10)
        late = _record(user, 2)  # commits while the slow writer's transaction is still open
        # Two readers in between: one walks the whole list, one keeps the first page's ``previous`` link.
        first_reading = _walk(client)
        first_page = client.get("/api/v1/events").json()
        poll = first_page["previous"]
        assert poll is not None
    finally:
        release.set()
        thread.join()
    assert not failure
    (slow,) = {str(pk) for pk in Event.objects.values_list("pk", flat=True)} - {old, str(late.pk)}
    everything = {old, slow, str(late.pk)}

    # The walker re-reads from the top down to the newest event it has; the poller follows ``previous``.
    walked, polled = list(first_reading), [event["id"] for event in first_page["results"]]

    def caught_up() -> bool:
        nonlocal poll
        walked.extend(_new_from_the_top(client, walked))
        body = client.get(poll).json()
        polled.extend(event["id"] for event in body["results"])
        poll = body["previous"]
        return set(walked) == everything and set(polled) == everything

    _until(caught_up)
    assert len(walked) == len(polled) == 3  # nothing twice
    # The log's order is the writers' transaction ids: the slow writer's event sits below the late one,
    # which was therefore held back while the slow writer was open.
    assert _walk(client) == [str(late.pk), slow, old]
    assert first_reading == [old]


@pytest.mark.django_db(transaction=True)
def test_a_later_commit_is_listed_as_newer_whatever_its_id(client_for, monkeypatch):
    """The list follows the commits, not the ids: an event written later with a smaller id is still the newest."""
    user = UserFactory()
    client = client_for(user)
    ids = iter([uuid.UUID("01900000-0000-7000-8000-00000000ffff"), uuid.UUID("01900000-0000-7000-8000-000000000001")])
    monkeypatch.setattr(recording, "uuid7", lambda: next(ids))
    first = _record(user, 1)
    second = _record(user, 2)
    assert second.pk < first.pk
    _until(lambda: len(_walk(client)) == 2)
    assert _walk(client) == [str(second.pk), str(first.pk)]


@pytest.mark.django_db
def test_a_cursor_that_is_not_a_log_position_is_a_404(client_for):
    import base64
    import json

    client = client_for(UserFactory())
    for payload in ({"d": "next", "x": "1", "i": str(uuid.uuid4())}, {"d": "prev", "x": -1, "i": str(uuid.uuid4())},
                    {"d": "next", "x": 2**63, "i": str(uuid.uuid4())}, {"d": "next", "x": 1, "i": "nope"},
                    {"d": "up", "x": 1, "i": str(uuid.uuid4())}):
        cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
        response = client.get(f"/api/v1/events?cursor={cursor}")
        assert response.status_code == 404 and response.json()["error"] == {"code": "not_found", "message": "Invalid cursor."}
    assert client.get("/api/v1/events?cursor=%%%").status_code == 404


@pytest.mark.django_db
def test_a_previous_page_that_is_still_empty_links_to_itself(client_for):
    user = UserFactory()
    client = client_for(user)
    assert client.get("/api/v1/events").json() == {"results": [], "next": None, "previous": None}
    _record(user, 1)
    first = client.get("/api/v1/events").json()
    empty = client.get(first["previous"]).json()
    assert empty == {"results": [], "next": None, "previous": first["previous"]}
    newer = _record(user, 2)
    assert [event["id"] for event in client.get(empty["previous"]).json()["results"]] == [str(newer.pk)]


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_page_of_events_is_an_ordered_walk_of_the_recipients_index(client_for):
    """EXPLAIN of GET events (first page, a cursor, a type): the index gives the order and starts at the cursor."""
    user = UserFactory()
    for n in range(3):
        _record(user, n)
    client = client_for(user)
    first = client.get("/api/v1/events?page_size=1").json()
    for url, index in (
        (first["next"], "events_recipient_pos_idx"),
        (first["previous"], "events_recipient_pos_idx"),
        ("/api/v1/events?type=account.frozen&page_size=1", "events_recipient_type_pos_idx"),
    ):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        (sql,) = [query["sql"] for query in queries.captured_queries if "events_eventrecipient" in query["sql"]]
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert f"Index Scan using {index}" in plan or f"Index Scan Backward using {index}" in plan, plan
        assert "Sort" not in plan, plan
        condition = plan.split("Index Cond:")[1].splitlines()[0]
        assert "user_id =" in condition and "xid <= COALESCE(" in condition, plan  # the horizon bounds the walk
        if "cursor=" in url:
            assert "ROW(xid, event_id)" in condition, plan  # the walk starts at the cursor
