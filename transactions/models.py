"""The business view of money movement: transactions and idempotency records.

A ``Transaction`` is what the client asked for (deposit, withdrawal, transfer,
conversion, reversal) and its lifecycle: ``pending`` (an open hold) -> ``committed`` |
``voided``; ``committed`` -> ``reversed``. A committed transaction points at
the ``ledger.JournalEntry`` that moved the money; a pending hold has no entry
yet (see the design note in ``ledger/models.py``).

``IdempotencyRecord`` is the durable half of idempotency: written in the same
database transaction as the movement, unique per (user, endpoint, key), holding
the request fingerprint and the exact response to replay.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ledger.models import JournalEntry, LedgerAccount
from ledger.money import money_display
from ledgerx.ids import uuid7


class Batch(models.Model):
    """Many movements of one user in one request (``transactions.batches``).

    ``results`` keeps each item's outcome in request order: ``{"index",
    "status", "transaction" (id or null), "error" ({code, message} or null)}``;
    the transactions themselves are ordinary rows pointing back here.
    """

    class Status(models.TextChoices):
        COMMITTED = "committed"
        PARTIAL = "partial"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False, editable=False
    )
    atomic = models.BooleanField(editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, editable=False)
    count = models.PositiveIntegerField(editable=False)
    succeeded = models.PositiveIntegerField(editable=False)
    failed = models.PositiveIntegerField(editable=False)
    results = models.JSONField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "batches"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at", "-id"], name="batch_owner_keyset_idx")]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.succeeded}/{self.count} {self.status})"


class Transaction(models.Model):
    class Type(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        WITHDRAWAL = "withdrawal", "Withdrawal"
        TRANSFER = "transfer", "Transfer"
        REVERSAL = "reversal", "Reversal"
        CONVERSION = "conversion", "Conversion"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        COMMITTED = "committed", "Committed"
        VOIDED = "voided", "Voided"
        REVERSED = "reversed", "Reversed"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)  # time-ordered: see ledgerx.ids
    type = models.CharField(max_length=12, choices=Type.choices, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, editable=False)
    amount = models.BigIntegerField(editable=False)
    currency = models.CharField(max_length=3, editable=False)
    source_account = models.ForeignKey(
        LedgerAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="outgoing_transactions",
        editable=False,
        db_index=False,  # covered by txn_source_keyset_idx (source_account_id, created_at DESC, id DESC)
    )
    destination_account = models.ForeignKey(
        LedgerAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="incoming_transactions",
        editable=False,
        db_index=False,  # covered by txn_destination_keyset_idx (destination_account_id, created_at DESC, id DESC)
    )
    description = models.CharField(max_length=500, blank=True, default="", editable=False)
    metadata = models.JSONField(default=dict, blank=True, editable=False)
    entry = models.OneToOneField(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="transaction", editable=False
    )
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by", editable=False
    )
    initiated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions", editable=False,
        db_index=False,  # covered by txn_batch_idx (partial: most transactions are not batched)
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    committed_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="Holds only.")
    # Conversions (and their reversals): both legs and the rate they were booked at. ``amount`` and
    # ``currency`` are the source leg's. One quote, one conversion: the unique key is the database's guard.
    source_amount = models.BigIntegerField(null=True, blank=True, editable=False)
    destination_amount = models.BigIntegerField(null=True, blank=True, editable=False)
    destination_currency = models.CharField(max_length=3, null=True, blank=True, editable=False)
    rate = models.DecimalField(max_digits=40, decimal_places=30, null=True, blank=True, editable=False)
    quote = models.OneToOneField(
        "fx.FxQuote", null=True, blank=True, on_delete=models.PROTECT, related_name="transaction", editable=False
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="transactions_amount_positive"),
            models.CheckConstraint(
                condition=Q(type__in=["deposit", "withdrawal", "transfer", "reversal", "conversion"]),
                name="transactions_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "committed", "voided", "reversed"]), name="transactions_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(source_account__isnull=False) | Q(destination_account__isnull=False),
                name="transactions_has_a_side",
            ),
            # A conversion carries both legs, its rate and its quote, and has both (customer) sides.
            models.CheckConstraint(
                condition=~Q(type="conversion")
                | (
                    Q(source_amount__isnull=False) & Q(destination_amount__isnull=False) & Q(rate__isnull=False)
                    & Q(quote__isnull=False) & Q(source_account__isnull=False) & Q(destination_account__isnull=False)
                ),
                name="transactions_conversion_shape",
            ),
        ]
        indexes = [
            # Keyset pages per side: (account, created_at, id) newest first.
            # The back office lists every transaction newest first (admin, dashboard).
            models.Index(fields=["-created_at", "-id"], name="txn_created_idx"),
            models.Index(fields=["batch", "-created_at", "-id"], name="txn_batch_idx", condition=Q(batch__isnull=False)),
            models.Index(fields=["source_account", "-created_at", "-id"], name="txn_source_keyset_idx"),
            models.Index(fields=["destination_account", "-created_at", "-id"], name="txn_destination_keyset_idx"),
            models.Index(
                fields=["expires_at"], condition=Q(status="pending"), name="txn_open_holds_idx"
            ),
            # An account page's open holds: only pending rows are in it, so it stays small.
            models.Index(
                fields=["source_account", "expires_at"], condition=Q(status="pending"), name="txn_account_holds_idx"
            ),
        ]

    def __str__(self) -> str:
        # Shown where staff pick or confirm (the reverse page, messages): which one, and how much as money.
        return f"{self.type} {self.pk}: {money_display(self.amount, self.currency)} ({self.status})"


class IdempotencyRecord(models.Model):
    id = models.BigAutoField(primary_key=True)
    # db_index=False: covered by idempotency_user_endpoint_key_unique (user_id, endpoint, key).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    endpoint = models.CharField(max_length=40)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    # db_index=False: idempotency_transaction_unique (transaction_id) is the index.
    # Null for a batch: its stored response is the batch, whose transactions point to it.
    transaction = models.ForeignKey(
        Transaction, null=True, on_delete=models.PROTECT, related_name="idempotency_records", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "endpoint", "key"], name="idempotency_user_endpoint_key_unique"),
            # One key, one transaction: a transaction is never bound to two keys.
            models.UniqueConstraint(fields=["transaction"], name="idempotency_transaction_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint}:{self.key}"
