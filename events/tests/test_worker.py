"""Delivery end to end: a real local receiver, signatures checked with the standardwebhooks library."""

import json
import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from accounts.tests.factories import AdminFactory
from audit.models import AuditRecord
from events.models import Delivery, Event, WebhookEndpoint
from events.services.endpoints import endpoint_create, endpoint_rotate_secret
from events.worker.claiming import deliveries_claim
from events.worker.loop import deliveries_run
from events.worker.sending import RETRY_SCHEDULE, delivery_attempt, retry_delay
from ledger.services.customer_accounts import account_freeze
from ledger.tests.factories import customer_account
from transactions.services.money import deposit_create
from transactions.tests.helpers import new_key

pytestmark = pytest.mark.django_db


def _deposit(account, amount=100):
    return deposit_create(actor=account.owner, account=account, amount=amount, idempotency_key=new_key()).transaction


def test_delivery_is_signed_so_the_standardwebhooks_library_verifies_it(receiver):
    account = customer_account()
    endpoint, secret = endpoint_create(actor=account.owner, url=receiver.url)
    txn = _deposit(account, 1050)
    assert deliveries_run(worker_id="w1") == 1
    (got,) = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    event = Event.objects.get()
    assert got.headers["webhook-id"] == str(event.pk)
    assert payload["id"] == str(event.pk) and payload["type"] == "transaction.created"
    assert (payload["data"]["id"], payload["data"]["amount"]) == (str(txn.pk), 1050)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)


def test_a_wrong_secret_does_not_verify(receiver):
    from standardwebhooks.webhooks import WebhookVerificationError

    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    _deposit(account)
    deliveries_run(worker_id="w1")
    (got,) = receiver.received
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(got.body, got.headers)
    tampered = got.body.replace(b'"amount":100', b'"amount":999')
    endpoint = WebhookEndpoint.objects.get()
    from events.services.endpoints import endpoint_secret

    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint_secret(endpoint)).verify(tampered, got.headers)


def test_after_rotation_both_secrets_verify_for_24_hours(receiver):
    account = customer_account()
    endpoint, old_secret = endpoint_create(actor=account.owner, url=receiver.url)
    endpoint, new_secret = endpoint_rotate_secret(actor=account.owner, endpoint=endpoint)
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    _deposit(account)
    deliveries_run(worker_id="w1")
    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(got.body, got.headers)
    Webhook(new_secret).verify(got.body, got.headers)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    _deposit(account)
    deliveries_run(worker_id="w1")
    assert len(receiver.received[1].headers["webhook-signature"].split(" ")) == 1


def test_retry_delays_grow_exponentially_with_jitter_for_more_than_24_hours():
    class Fixed:
        def __init__(self, value):
            self.value = value

        def uniform(self, low, high):
            return self.value

    assert [round(retry_delay(n, rng=Fixed(0))) for n in range(1, 10)] == RETRY_SCHEDULE + [28800]
    assert retry_delay(1, rng=Fixed(0.2)) == pytest.approx(6.0)
    assert retry_delay(1, rng=Fixed(-0.2)) == pytest.approx(4.0)
    assert sum(retry_delay(n, rng=Fixed(-0.2)) for n in range(1, 20)) > 24 * 3600


def test_receiver_down_then_up_every_event_arrives_in_order_of_first_attempts(receiver):
    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    receiver.status = 500
    for amount in (1, 2, 3):
        _deposit(account, amount)
    assert deliveries_run(worker_id="w1") == 3
    first = list(Delivery.objects.order_by("id"))
    assert [(d.status, d.attempts, d.last_status_code, d.last_error) for d in first] == [("pending", 1, 500, "HTTP 500")] * 3
    now = timezone.now()
    for delivery in first:
        # Backoff: the next attempt is 5 s +-20 % after the first one.
        assert timedelta(seconds=3.9) <= delivery.next_attempt_at - delivery.last_attempt_at <= timedelta(seconds=6.1)
    assert deliveries_run(worker_id="w1") == 0  # nothing due yet
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.failing_since is not None
    receiver.status = 200
    # The first retry comes due; its success brings the rest of the backlog forward.
    Delivery.objects.filter(pk=first[0].pk).update(next_attempt_at=now)
    assert deliveries_run(worker_id="w1") == 1
    assert deliveries_run(worker_id="w1") == 2
    amounts = [json.loads(item.body)["data"]["amount"] for item in receiver.received]
    assert amounts == [1, 2, 3]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert WebhookEndpoint.objects.get().failing_since is None


@pytest.mark.django_db(transaction=True)
def test_a_backlog_is_sent_in_the_order_of_the_event_log_not_of_the_ids(receiver, monkeypatch):
    """Three deposits committed one after the other, with ids that sort the other way round."""
    import uuid

    import events.services.recording

    # Version 7 ids whose time part goes backwards (delivery ids on PostgreSQL share it).
    ids = (uuid.UUID(f"{ms:012x}7000800000000000{ms % 4096:04x}") for ms in range(0x019000000000, 0, -1))
    monkeypatch.setattr(events.services.recording, "uuid7", lambda: next(ids))
    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    receiver.status = 500
    for amount in (1, 2, 3):
        _deposit(account, amount)
    assert deliveries_run(worker_id="w1") == 3
    receiver.status = 200
    Delivery.objects.update(next_attempt_at=timezone.now())  # the receiver is back: the whole backlog is due at once
    assert deliveries_run(worker_id="w1") == 3
    amounts = [json.loads(item.body)["data"]["amount"] for item in receiver.received]
    assert amounts == [1, 2, 3]
    assert list(Delivery.objects.order_by("id").values_list("event__data__amount", flat=True)) == [3, 2, 1]


def test_an_endpoint_failing_for_five_days_is_disabled_with_an_event_and_an_audit_record(receiver):
    account = customer_account()
    endpoint, _ = endpoint_create(actor=account.owner, url=receiver.url)
    receiver.status = 503
    _deposit(account)
    deliveries_run(worker_id="w1")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=5, minutes=1))
    Delivery.objects.update(next_attempt_at=timezone.now())
    deliveries_run(worker_id="w1")
    endpoint.refresh_from_db()
    assert (endpoint.status, endpoint.disabled_reason) == ("disabled", "Failing for 5 days.")
    assert list(Delivery.objects.values_list("status", flat=True)) == ["failed"]
    event = Event.objects.get(type="webhook_endpoint.disabled")
    assert event.data["id"] == str(endpoint.pk)
    assert list(event.recipients.values_list("user_id", flat=True)) == [account.owner_id]
    assert AuditRecord.objects.filter(action="webhook.endpoint_disabled", target_id=str(endpoint.pk)).count() == 1
    # A disabled endpoint gets nothing new.
    account_freeze(actor=AdminFactory(), account=account, reason="r")
    assert not Delivery.objects.filter(event__type="account.frozen").exists()


def test_a_killed_workers_claim_expires_and_another_worker_delivers(receiver):
    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    _deposit(account)
    (claimed,) = deliveries_claim(worker_id="dead", limit=10)  # ... and the worker dies here
    assert deliveries_run(worker_id="alive") == 0  # the lease still holds
    later = timezone.now() + timedelta(minutes=2)
    assert deliveries_claim(worker_id="alive", limit=10, now=later) == [claimed]
    assert delivery_attempt(claimed, worker_id="alive") is True
    assert len(receiver.received) == 1
    # The dead worker's late outcome (if it ever wakes up) changes nothing.
    assert delivery_attempt(claimed, worker_id="dead") is True
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)


def test_a_url_that_became_private_is_refused_at_delivery(receiver, settings):
    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    _deposit(account)
    settings.WEBHOOKS_ALLOW_INSECURE = False  # now 127.0.0.1 and http are refused, as in production
    deliveries_run(worker_id="w1")
    delivery = Delivery.objects.get()
    assert receiver.received == []
    assert delivery.status == "pending" and delivery.last_error.startswith("refused:")


def test_a_response_body_over_64_kb_is_not_read(receiver):
    receiver.response_body = b"x" * (1024 * 1024)
    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    _deposit(account)
    deliveries_run(worker_id="w1")
    assert Delivery.objects.get().status == "succeeded"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_deliver_each_of_n_events_exactly_once(receiver):
    from django.db import connection

    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    for _ in range(200):
        _deposit(account, 1)
    expected = set(str(pk) for pk in Event.objects.values_list("id", flat=True))

    def work(name):
        try:
            while deliveries_run(worker_id=name, limit=7):
                pass
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = receiver.ids()
    assert len(ids) == len(expected) == 200
    assert set(ids) == expected
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert set(Delivery.objects.values_list("claimed_by", flat=True)) == {""}


def test_the_worker_loop_runs_the_periodic_work_and_delivers(receiver):
    from events.worker.loop import Worker
    from transactions.models import Transaction
    from transactions.services.money import transfer_create
    from transactions.tests.helpers import PIN, funded_account

    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    endpoint_create(actor=destination.owner, url=receiver.url, events=["transaction.expired"])
    txn = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=100, pin=PIN,
        idempotency_key=new_key(), hold=True,
    ).transaction
    Transaction.objects.filter(pk=txn.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    logged = []
    Worker(concurrency=1, log=logged.append).run(once=True)
    assert Transaction.objects.get(pk=txn.pk).status == "voided"
    assert "expire_holds: 1" in logged
    (got,) = receiver.received
    assert json.loads(got.body)["type"] == "transaction.expired"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_worker_loops_with_thread_pools_deliver_each_event_exactly_once(receiver):
    from events.worker.loop import Worker

    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    for _ in range(100):
        _deposit(account, 1)
    from django.db import connection

    def run(worker):
        try:
            worker.run(once=True)
        finally:
            connection.close()

    workers = [Worker(concurrency=4, batch=10, poll=0.05, periodic=False) for _ in range(2)]
    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = receiver.ids()
    assert len(ids) == 100 and len(set(ids)) == 100
    assert Delivery.objects.filter(status=Delivery.Status.PENDING).count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_together_send_at_most_four_requests_at_once_to_an_endpoint(receiver):
    """The limit is per endpoint across workers (each worker alone could send 8), and a busy endpoint starves no other."""
    import time

    from django.db import connection

    from events.worker.claiming import PER_ENDPOINT
    from events.worker.loop import Worker

    busy, other = customer_account(), customer_account()
    endpoint_create(actor=busy.owner, url=receiver.url + "/busy")
    endpoint_create(actor=other.owner, url=receiver.url + "/other")
    for _ in range(16):
        _deposit(busy, 1)
    for _ in range(6):
        _deposit(other, 1)
    receiver.delay = 0.25
    workers = [Worker(concurrency=8, batch=6, poll=0.02, periodic=False) for _ in range(2)]

    def run(worker):
        try:
            worker.run()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(receiver.ids()) < 22 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for worker in workers:
            worker.stopping.set()
        for thread in threads:
            thread.join()
    assert PER_ENDPOINT == 4
    assert receiver.peak == {"/hook/busy": 4, "/hook/other": 4}
    paths = [item.path for item in receiver.received]
    assert (paths.count("/hook/busy"), paths.count("/hook/other")) == (16, 6)
    assert len(set(receiver.ids())) == 22  # each once
    assert paths.index("/hook/other") < 8  # served while the busy endpoint still had its backlog


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_loses_nothing(receiver):
    """A real ``manage.py worker`` process, killed with SIGKILL while its request is in flight."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from django.db import connection

    from events.worker.claiming import LEASE

    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    _deposit(account, 77)
    receiver.hang = 60
    name = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        "DJANGO_SETTINGS_MODULE": "ledgerx.test_settings",
        "LEDGERX_WEBHOOKS_ALLOW_INSECURE": "1",
    }
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--no-periodic", "--concurrency", "2"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):  # wait (up to a minute) for its request to reach the receiver
            if receiver.started:
                break
            time.sleep(0.1)
        assert receiver.started == 1
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 0) and delivery.claimed_by
    receiver.hang = 0
    assert deliveries_run(worker_id="survivor") == 0  # the dead worker's lease still holds
    later = timezone.now() + LEASE + timedelta(seconds=1)
    (claimed,) = deliveries_claim(worker_id="survivor", limit=10, now=later)
    assert delivery_attempt(claimed, worker_id="survivor") is True
    (got,) = receiver.received
    assert json.loads(got.body)["data"]["amount"] == 77
    assert Delivery.objects.get().status == "succeeded"
    connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_worker_reconnects_after_its_database_connections_are_killed(receiver):
    """What a PostgreSQL restart does to a running worker: every connection it had is gone."""
    import time

    from django.db import connection

    from events.worker.loop import Worker

    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    worker = Worker(concurrency=2, poll=0.05, periodic=False)

    def run():
        try:
            worker.run()
        finally:
            connection.close()

    def wait_for(count):
        for _ in range(600):
            if len(receiver.received) >= count:
                return
            time.sleep(0.05)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        _deposit(account, 1)
        wait_for(1)
        assert len(receiver.received) == 1
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        _deposit(account, 2)
        wait_for(2)
    finally:
        worker.stopping.set()
        thread.join()
    assert [json.loads(item.body)["data"]["amount"] for item in receiver.received] == [1, 2]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_wakes_on_a_notify_long_before_its_poll_interval(receiver):
    import time

    from django.db import connection

    from events.models import DeliveryWaiter
    from events.worker.loop import Worker

    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    worker = Worker(concurrency=2, poll=10, periodic=False)
    assert worker.listen

    def run():
        try:
            worker.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        for _ in range(200):  # until it waits
            if DeliveryWaiter.objects.filter(worker_id=worker.worker_id).exists():
                break
            time.sleep(0.05)
        time.sleep(0.2)  # well inside its 10 s wait
        started = time.monotonic()
        _deposit(account, 5)
        while not receiver.received and time.monotonic() - started < 8:
            time.sleep(0.01)
        assert receiver.received and time.monotonic() - started < 3
    finally:
        worker.stopping.set()
        with connection.cursor() as cursor:
            cursor.execute("NOTIFY ledgerx_deliveries")  # ends its current wait now
        thread.join()
    assert not DeliveryWaiter.objects.exists()  # a worker that stops withdraws its wait


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_new_delivery_notifies_only_while_a_worker_waits(receiver):
    """PostgreSQL serializes notifying commits: with no worker waiting, movements do not notify."""
    from datetime import timedelta

    import psycopg
    from django.db import connection

    from events.models import DeliveryWaiter
    from events.worker.waiting import WAKE_CHANNEL

    account = customer_account()
    endpoint_create(actor=account.owner, url=receiver.url)
    settings_dict = connection.settings_dict
    with psycopg.connect(
        host=settings_dict["HOST"], port=settings_dict["PORT"], user=settings_dict["USER"],
        dbname=settings_dict["NAME"], autocommit=True,
    ) as listener:
        listener.execute(f"LISTEN {WAKE_CHANNEL}")
        _deposit(account, 1)
        assert list(listener.notifies(timeout=0.5)) == []
        DeliveryWaiter.objects.create(worker_id="gone", until=timezone.now() - timedelta(seconds=1))
        _deposit(account, 2)
        assert list(listener.notifies(timeout=0.5)) == []  # an expired wait does not count
        DeliveryWaiter.objects.create(worker_id="waiting", until=timezone.now() + timedelta(minutes=1))
        _deposit(account, 3)
        assert [note.channel for note in listener.notifies(timeout=2, stop_after=1)] == [WAKE_CHANNEL]
        account_freeze(actor=AdminFactory(), account=account, reason="r")  # an event with a delivery: notifies too
        assert len(list(listener.notifies(timeout=2, stop_after=1))) == 1
        endpoint_create(actor=customer_account().owner, url=receiver.url)
        assert Delivery.objects.count() == 4
