"""The double-entry books: ledger accounts, journal entries, postings.

Design note (read this before building on these models)
--------------------------------------------------------
* ``LedgerAccount`` is every account money can sit in. ``kind="customer"``
  accounts have an ``owner`` (a User), one ``currency``, a ``status``
  (active/frozen) and a human ``number``. ``kind="system"`` accounts belong to
  the house: per currency a ``funding`` account (counterpart of deposits, goes
  negative as outside money comes in), a ``payouts`` account (counterpart of
  withdrawals) and an ``fx_pool`` (the house's side of conversions: it takes
  the source currency and pays out the destination currency, so it may go
  negative in one currency and positive in another; ``fx.selectors``).
  A system account is split into ``settings.LEDGER_SYSTEM_SHARDS`` rows (``shard`` 0..N-1, same ``system_role``;
  an FX pool into ``settings.LEDGER_FX_POOL_SHARDS``); a movement picks one at random,
  so deposits do not serialize on one hot row. The system account's balance is
  the sum over its shards (``ledger.selectors.system_balance``).
* Stored balances: ``posted`` (sum of all postings) and ``pending`` (sum of the
  open holds reserving money on this account, outgoing). ``available = posted -
  pending``. ``version`` increases on every change (cache freshness). They
  are written only under ``SELECT ... FOR UPDATE``: by ``ledger.services``
  and, for new movements on PostgreSQL, by the SQL function
  ``ledgerx_movement_create`` (``transactions/migrations/0005``).
  A database check keeps customer accounts at posted >= pending >= 0.
* ``JournalEntry``: one per movement, never updated or deleted. It names the
  business object it records by ``ref_type``/``ref_id`` (e.g. "transfer" + the
  transaction id); the ledger never imports ``transactions``.
* ``Posting``: signed minor units on one account (credit +, debit -), with the
  account's posted balance after it (``balance_after``, written under the lock),
  so statements and point-in-time balances are one index lookup. An entry's
  postings sum to zero per currency: the services check it, and on PostgreSQL a
  deferred constraint trigger refuses the commit otherwise; other triggers
  refuse UPDATE and DELETE of postings and entries.
* Holds write NO journal entry when created: they only raise ``pending`` on the
  source. Committing writes the entry (and lowers ``pending``), voiding only
  lowers ``pending``. ``verify_ledger`` checks ``pending`` against the open
  holds.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        SYSTEM = "system", "System"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FROZEN = "frozen", "Frozen"

    class SystemRole(models.TextChoices):
        FUNDING = "funding", "External funding (deposits)"
        PAYOUTS = "payouts", "External payouts (withdrawals)"
        FX_POOL = "fx_pool", "Currency conversion pool"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True, editable=False)
    name = models.CharField(max_length=100, blank=True, default="")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CUSTOMER, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
        editable=False,
        db_index=False,  # covered by ledger_account_owner_idx (owner_id, created_at DESC)
    )
    system_role = models.CharField(max_length=20, choices=SystemRole.choices, blank=True, default="", editable=False)
    shard = models.PositiveSmallIntegerField(default=0, editable=False)
    currency = models.CharField(max_length=3, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, editable=False)
    posted = models.BigIntegerField(default=0, editable=False)
    pending = models.BigIntegerField(default=0, editable=False)
    version = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["customer", "system"]), name="ledger_account_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=["active", "frozen"]), name="ledger_account_status_valid"),
            # Customer money never goes below zero, and holds never exceed it.
            models.CheckConstraint(
                condition=~Q(kind="customer") | (Q(pending__gte=0) & Q(posted__gte=F("pending"))),
                name="ledger_account_customer_not_negative",
            ),
            # No customer balance past 2^53 - 1 (ledger.exceptions.BALANCE_LIMIT): the
            # largest integer every JSON client reads exactly. Refused as balance_limit.
            models.CheckConstraint(
                condition=~Q(kind="customer") | Q(posted__lte=9007199254740991),
                name="ledger_account_customer_balance_limit",
            ),
            models.CheckConstraint(
                condition=(Q(kind="customer") & Q(owner__isnull=False) & Q(system_role=""))
                | (Q(kind="system") & Q(owner__isnull=True) & ~Q(system_role="")),
                name="ledger_account_kind_shape",
            ),
            models.UniqueConstraint(
                fields=["currency", "system_role", "shard"],
                condition=Q(kind="system"),
                name="ledger_account_system_shard_unique",
            ),
        ]
        indexes = [models.Index(fields=["owner", "-created_at"], name="ledger_account_owner_idx")]

    def __str__(self) -> str:
        if self.kind == self.Kind.SYSTEM:
            return f"system:{self.system_role}:{self.currency}#{self.shard}"
        return f"{self.number} ({self.currency})"

    @property
    def available(self) -> int:
        return self.posted - self.pending

    @property
    def is_customer(self) -> bool:
        return self.kind == self.Kind.CUSTOMER

    @property
    def is_frozen(self) -> bool:
        return self.status == self.Status.FROZEN


class JournalEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    ref_type = models.CharField(max_length=20)
    ref_id = models.UUIDField(db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"entry {self.pk} ({self.ref_type} {self.ref_id})"


class Posting(models.Model):
    id = models.BigAutoField(primary_key=True)
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    # db_index=False: covered by ledger_posting_account_idx (account_id, id DESC).
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings", db_index=False)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Signed minor units: + credit to the account, - debit.")
    balance_after = models.BigIntegerField(help_text="The account's posted balance right after this posting.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_posting_amount_nonzero")]
        indexes = [
            # Statement pages (newest first) and point-in-time balances.
            models.Index(fields=["account", "-id"], name="ledger_posting_account_idx"),
            models.Index(fields=["account", "created_at", "id"], name="ledger_posting_asof_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.amount:+d} {self.currency} on {self.account_id}"
