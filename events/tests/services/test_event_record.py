"""The outbox: every change has its event in the same transaction, and only the parties see it."""

import pytest
from django.db import connection, transaction

from accounts.services import user_reinstate, user_suspend
from accounts.tests.factories import AdminFactory, UserFactory
from events.models import Delivery, Event, EventRecipient, WebhookEndpoint
from events.services.endpoints import endpoint_create
from events.services.recording import event_record
from ledger.exceptions import InsufficientFunds
from ledger.services.customer_accounts import account_freeze, account_unfreeze
from transactions.services.holds import hold_commit, hold_void
from transactions.services.money import transfer_create
from transactions.services.reversals import transaction_reverse
from transactions.tests.helpers import PIN, books, funded_account, new_key

pytestmark = pytest.mark.django_db


def _events(user=None):
    queryset = Event.objects.order_by("id")
    if user is not None:
        queryset = queryset.filter(recipients__user=user)
    return [(event.type, event.data.get("id")) for event in queryset]


def test_deposit_records_transaction_created_with_the_api_shape():
    account = funded_account(amount=2500)
    (event,) = Event.objects.all()
    assert event.type == "transaction.created"
    assert event.data["type"] == "deposit" and event.data["status"] == "committed"
    assert (event.data["amount"], event.data["currency"], event.data["destination_account"]) == (2500, "USD", str(account.pk))
    assert list(EventRecipient.objects.values_list("user_id", flat=True)) == [account.owner_id]


def test_both_sides_of_a_transfer_see_it_and_nobody_else():
    source = funded_account(amount=10_000)
    destination = funded_account(amount=0)
    third = funded_account(amount=500)
    outcome = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=700, pin=PIN, idempotency_key=new_key()
    )
    txn_id = str(outcome.transaction.pk)
    assert ("transaction.created", txn_id) in _events(source.owner)
    assert ("transaction.created", txn_id) in _events(destination.owner)
    assert ("transaction.created", txn_id) not in _events(third.owner)


def test_a_refused_movement_leaves_no_event():
    source = funded_account(amount=100)
    destination = funded_account(amount=0)
    before, events_before = books(), Event.objects.count()
    with pytest.raises(InsufficientFunds):
        transfer_create(
            actor=source.owner, source=source, destination=destination, amount=101, pin=PIN, idempotency_key=new_key()
        )
    assert books() == before
    assert Event.objects.count() == events_before


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_leaves_no_event_and_a_committed_one_has_it():
    admin = AdminFactory()
    account = funded_account(amount=0)
    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(type="account.frozen", data={"id": "x"}, user_ids=[account.owner_id])
        raise RuntimeError("the change failed")
    assert Event.objects.filter(type="account.frozen").count() == 0
    account_freeze(actor=admin, account=account, reason="kyc")
    (event,) = Event.objects.filter(type="account.frozen")
    assert (event.data["id"], event.data["status"]) == (str(account.pk), "frozen")


@pytest.mark.django_db(transaction=True)
def test_event_record_refuses_to_run_outside_a_transaction():
    with pytest.raises(RuntimeError):
        event_record(type="account.frozen", data={}, user_ids=[])
    assert Event.objects.count() == 0


def test_holds_commit_void_and_reversal_events():
    admin = AdminFactory()
    source = funded_account(amount=10_000)
    destination = funded_account(amount=0)

    def hold(amount):
        return transfer_create(
            actor=source.owner, source=source, destination=destination, amount=amount, pin=PIN,
            idempotency_key=new_key(), hold=True,
        ).transaction

    first, second = hold(100), hold(200)
    first = hold_commit(actor=source.owner, transaction=first)
    hold_void(actor=source.owner, transaction=second)
    reversal = transaction_reverse(actor=admin, transaction=first, reason="dispute")
    seen = _events(destination.owner)
    assert seen[-6:] == [
        ("transaction.created", str(first.pk)),
        ("transaction.created", str(second.pk)),
        ("transaction.committed", str(first.pk)),
        ("transaction.voided", str(second.pk)),
        ("transaction.created", str(reversal.pk)),
        ("transaction.reversed", str(first.pk)),
    ]
    reversed_event = Event.objects.get(type="transaction.reversed")
    assert (reversed_event.data["status"], reversed_event.data["reversed_by"]) == ("reversed", str(reversal.pk))


def test_expired_hold_records_transaction_expired():
    from datetime import timedelta

    from django.utils import timezone

    from transactions.services.holds import hold_expire

    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    txn = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=100, pin=PIN,
        idempotency_key=new_key(), hold=True,
    ).transaction
    assert hold_expire(now=timezone.now() + timedelta(days=30)) == 1
    event = Event.objects.get(type="transaction.expired")
    assert (event.data["id"], event.data["status"]) == (str(txn.pk), "voided")
    assert set(event.recipients.values_list("user_id", flat=True)) == {source.owner_id, destination.owner_id}


def test_account_and_user_status_events():
    admin = AdminFactory()
    account = funded_account(amount=0)
    user = account.owner
    account_freeze(actor=admin, account=account, reason="r")
    account_unfreeze(actor=admin, account=account, reason="r")
    user_suspend(actor=admin, user=user, reason="r")
    user_reinstate(actor=admin, user=user, reason="r")
    assert [kind for kind, _id in _events(user)][-4:] == [
        "account.frozen", "account.unfrozen", "user.suspended", "user.reinstated"
    ]
    suspended = Event.objects.get(type="user.suspended")
    assert suspended.data == {
        "id": str(user.pk), "email": user.email, "full_name": user.full_name, "role": "user",
        "status": "suspended", "pin_set": True,
    }


def test_pin_lockout_records_user_suspended():
    from accounts.exceptions import InvalidPin
    from accounts.services import pin_verify

    account = funded_account(amount=0)
    from django.conf import settings

    for _ in range(settings.PIN_MAX_ATTEMPTS):
        with pytest.raises(InvalidPin):
            pin_verify(user=account.owner, pin="9999")
    event = Event.objects.get(type="user.suspended")
    assert event.data["status"] == "suspended"


def test_deliveries_fan_out_to_subscribed_enabled_endpoints(settings):
    settings.WEBHOOKS_ALLOW_INSECURE = True
    account = funded_account(amount=0)
    every, _ = endpoint_create(actor=account.owner, url="http://127.0.0.1:8170/all")
    only_frozen, _ = endpoint_create(actor=account.owner, url="http://127.0.0.1:8170/f", events=["account.frozen"])
    account_freeze(actor=AdminFactory(), account=account, reason="r")
    disabled, _ = endpoint_create(actor=account.owner, url="http://127.0.0.1:8170/off")
    WebhookEndpoint.objects.filter(pk=disabled.pk).update(status="disabled")
    endpoint_create(actor=UserFactory(), url="http://127.0.0.1:8170/someone-else")
    account_unfreeze(actor=AdminFactory(), account=account, reason="r")
    frozen = Event.objects.get(type="account.frozen")
    unfrozen = Event.objects.get(type="account.unfrozen")
    assert set(Delivery.objects.filter(event=frozen).values_list("endpoint_id", flat=True)) == {every.pk, only_frozen.pk}
    assert list(Delivery.objects.filter(event=unfrozen).values_list("endpoint_id", flat=True)) == [every.pk]
    delivery = Delivery.objects.get(event=unfrozen)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("pending", 0, unfrozen.created_at)
    if connection.vendor == "postgresql":
        assert str(delivery.pk)[:18] == str(unfrozen.pk)[:18]  # time-ordered like its event


@pytest.mark.postgres
def test_the_database_refuses_update_and_delete_of_events():
    from django.db import DatabaseError

    funded_account(amount=100)
    event = Event.objects.get()
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.filter(pk=event.pk).update(type="account.frozen")
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.filter(pk=event.pk).delete()


def test_a_user_with_events_cannot_be_deleted_and_recipients_cannot_be_changed():
    """The recipients' references are not database foreign keys: what keeps them whole is
    that users are never deleted (PROTECT, on every database) and recipients never change
    (append-only, on PostgreSQL)."""
    from django.db import DatabaseError
    from django.db.models import ProtectedError

    user = UserFactory()  # no account: its only rows elsewhere are its event's recipient
    user_suspend(actor=AdminFactory(), user=user, reason="r")
    (recipient,) = EventRecipient.objects.filter(user=user)
    with pytest.raises(ProtectedError) as refused, transaction.atomic():
        user.delete()
    assert {type(row) for row in refused.value.protected_objects} == {EventRecipient}
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic():
            EventRecipient.objects.filter(pk=recipient.pk).update(user=UserFactory())
        with pytest.raises(DatabaseError), transaction.atomic():
            EventRecipient.objects.filter(pk=recipient.pk).delete()
    assert EventRecipient.objects.get(pk=recipient.pk).user_id == user.pk


def test_each_event_and_its_recipients_carry_the_position_of_their_write():
    """PostgreSQL: the writing transaction's id (movement statement and ORM writers alike); SQLite: a counter."""
    source = funded_account(amount=1000)
    destination = funded_account(amount=0)
    transfer_create(actor=source.owner, source=source, destination=destination, amount=5, pin=PIN, idempotency_key=new_key())
    account_freeze(actor=AdminFactory(), account=destination, reason="r")
    events = list(Event.objects.order_by("id"))
    assert len(events) == 3  # the deposit, the transfer, the freeze
    for event in events:
        assert set(EventRecipient.objects.filter(event=event).values_list("xid", flat=True)) == {event.xid}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
            (test_transaction,) = cursor.fetchone()
        assert {event.xid for event in events} == {test_transaction}  # the whole test is one transaction
    else:
        positions = [event.xid for event in events]
        assert positions == sorted(positions) and len(set(positions)) == 3


@pytest.mark.postgres
def test_rows_written_without_a_position_get_the_writers_transaction_id():
    """What the previous version writes while it still serves during a deploy (it knows no ``xid``)."""
    user = UserFactory()
    endpoint = WebhookEndpoint.objects.create(owner=user, url="https://example.com/h", secret_nonce="n")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        (writer,) = cursor.fetchone()
        cursor.execute(
            "WITH e AS (INSERT INTO events_event (id, type, created_at, data)"
            " VALUES (gen_random_uuid(), 'account.frozen', now(), '{}') RETURNING id, xid),"
            " r AS (INSERT INTO events_eventrecipient (event_id, user_id, type) SELECT e.id, %s, 'account.frozen' FROM e"
            " RETURNING xid),"
            " d AS (INSERT INTO events_delivery (id, event_id, endpoint_id, status, attempts, claimed_by, last_error,"
            " created_at) SELECT gen_random_uuid(), e.id, %s, 'pending', 0, '', '', now() FROM e RETURNING xid)"
            " SELECT e.xid, r.xid, d.xid FROM e, r, d",
            [user.pk, endpoint.pk],
        )
        assert cursor.fetchone() == (writer, writer, writer)
