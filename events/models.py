"""Events (the transactional outbox), webhook endpoints and their deliveries.

Design note
-----------
* An ``Event`` is written by the service that makes the change, in the same
  database transaction (``events.services.recording.event_record``): a change that rolls
  back leaves no event, a committed change always has one. Events are
  append-only like the audit trail (PostgreSQL refuses UPDATE and DELETE,
  migration ``0002``) and are kept: the contract promises at least 30 days,
  and the table is an append-only log that nothing needs to shrink.
* ``EventRecipient`` says who may see an event: one row per user owning an
  account involved (both sides of a transfer) or the user the event is about.
  ``GET events`` is then a keyset walk of the index (user, xid, event id),
  never a scan of every event. Its two references are not foreign keys in
  the database: the rows are written in the very statement that writes their
  event, for users the writer has just read, and neither events nor users are
  ever deleted (events are append-only; a user is suspended, never removed);
  a foreign key would add, per recipient, a check at commit that locks the
  event's and the user's rows (FOR KEY SHARE: a WAL record each, and a
  MultiXact on the user row of a much-paid account's owner) on every movement.
* Order: events are listed by (``xid``, id). On PostgreSQL ``xid`` is the
  writing transaction's id (``pg_current_xact_id()``, taken in the INSERT
  itself), and readers list only the events whose ``xid`` is below the
  horizon of running transactions (``pg_snapshot_xmin``): every transaction
  that could still add an event below that horizon has ended, so the listed
  log only ever grows at its newest end, and a client that has read up to a
  position never misses an event that commits later (it comes after that
  position). Ordering by an id taken before the commit could not promise
  that: a slow transaction's event would appear behind positions already
  read. The cost is one bigint per row and a short delay: an event is listed
  once every transaction that took an id before its own has ended. On SQLite
  writes are serialized (``BEGIN IMMEDIATE``), so a number taken while
  writing is commit order already (``events.services``). The UUIDv7 id orders
  the events of one transaction.
* ``Delivery`` is the outbox's work queue: one row per (event, endpoint),
  fanned out in the event's own transaction for every enabled endpoint of a
  recipient that subscribes to the type. ``manage.py worker`` claims due rows
  with a lease (``claimed_until``); a worker that dies simply lets its lease
  run out and another worker claims the row again (``events.worker``). Live
  leases are what holds an endpoint to its few requests in flight across all
  workers, and a delivery carries its event's position so that deliveries due
  together go in the log's order.
* Endpoint secrets are never stored: each is derived from a server key and a
  per-endpoint random nonce (``events.signing``), so a database dump alone
  cannot sign a webhook.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ledgerx.ids import uuid7


class EventType(models.TextChoices):
    TRANSACTION_CREATED = "transaction.created"
    TRANSACTION_COMMITTED = "transaction.committed"
    TRANSACTION_VOIDED = "transaction.voided"
    TRANSACTION_REVERSED = "transaction.reversed"
    TRANSACTION_EXPIRED = "transaction.expired"
    ACCOUNT_FROZEN = "account.frozen"
    ACCOUNT_UNFROZEN = "account.unfrozen"
    USER_SUSPENDED = "user.suspended"
    USER_REINSTATED = "user.reinstated"
    BATCH_CREATED = "batch.created"
    # Told to the endpoint's owner when the worker gives up on an endpoint.
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"


class Event(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)  # time-ordered: see ledgerx.ids
    type = models.CharField(max_length=40, choices=EventType.choices, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    data = models.JSONField(editable=False)
    # Where the event sits in the log (with the id): see the design note. Events older than
    # this column have 0 (they keep their id order, before every newer event).
    xid = models.BigIntegerField(editable=False)

    class Meta:
        ordering = ["-id"]  # cheap (the primary key); the log's order is read from the recipients' index

    def __str__(self) -> str:
        return f"{self.type} {self.pk}"


class EventRecipient(models.Model):
    id = models.BigAutoField(primary_key=True)
    # No database foreign keys: see the design note.
    event = models.ForeignKey(
        Event, on_delete=models.PROTECT, related_name="recipients", db_index=False, db_constraint=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    type = models.CharField(max_length=40, editable=False)  # the event's, so ``?type=`` is answered from the index
    xid = models.BigIntegerField(editable=False)  # the event's, so the list's order is the index's

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "user"], name="events_recipient_unique")]
        indexes = [
            models.Index(fields=["user", "-xid", "-event"], name="events_recipient_pos_idx"),
            models.Index(fields=["user", "type", "-xid", "-event"], name="events_recipient_type_pos_idx"),
        ]


class WebhookEndpoint(models.Model):
    class Status(models.TextChoices):
        ENABLED = "enabled", "Enabled"
        DISABLED = "disabled", "Disabled"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list, blank=True, help_text="Event types; empty means every type.")
    description = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ENABLED)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    # The secret is derived from the server key and this nonce (events.signing); never stored.
    secret_nonce = models.CharField(max_length=64, editable=False)
    # After a rotation the old secret still signs until this moment (both signatures are sent).
    previous_secret_nonce = models.CharField(max_length=64, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # First failure of the current failing streak (None while the endpoint answers 2xx).
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["enabled", "disabled"]), name="events_endpoint_status_valid")
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="events_endpoint_owner_idx"),
            # The failing or disabled endpoints, longest-failing first (the dashboard, the admin's filters):
            # partial, so the healthy endpoints (nearly all) are not in it.
            models.Index(
                fields=["failing_since", "-created_at"], name="events_endpoint_failing_idx",
                condition=Q(failing_since__isnull=False) | Q(status="disabled"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.status})"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="+", db_index=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The event's position in the log (``Event.xid``): deliveries due together go in the log's order.
    xid = models.BigIntegerField(editable=False)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed"]), name="events_delivery_status_valid"
            ),
            models.UniqueConstraint(fields=["endpoint", "event"], name="events_delivery_unique"),
        ]
        indexes = [
            # The worker's queue: due pending deliveries, oldest due first, then in the log's order.
            models.Index(fields=["next_attempt_at", "xid", "id"], condition=Q(status="pending"),
                         name="events_delivery_due_pos_idx"),
            # GET webhook-endpoints/{id}/deliveries, newest first.
            models.Index(fields=["endpoint", "-id"], name="events_delivery_endpoint_idx"),
            # Live claims per endpoint (the claim's concurrency limit): only rows being sent are in it.
            models.Index(fields=["endpoint", "claimed_until"], condition=Q(claimed_until__isnull=False),
                         name="events_delivery_leased_idx"),
            # Pruning finished deliveries.
            models.Index(fields=["created_at"], condition=~Q(status="pending"), name="events_delivery_done_idx"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.status})"


class DeliveryWaiter(models.Model):
    """A worker waiting for new deliveries (PostgreSQL, ``LISTEN``), until ``until``.

    The database wakes waiting workers with a NOTIFY when a delivery is
    inserted (trigger, ``events/0006``), but only while a row here is current:
    PostgreSQL serializes the commits of notifying transactions, so a busy
    system (whose workers never wait) must not notify on every movement.
    """

    worker_id = models.CharField(max_length=64, primary_key=True)
    until = models.DateTimeField()
