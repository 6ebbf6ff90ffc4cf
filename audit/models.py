"""Append-only, hash-chained audit records.

Design note
-----------
* ``AuditRecord`` rows are written by services inside the same database
  transaction as the change they describe (``audit.services.records.audit_record``).
  They are inserted *unsealed* and never updated: the record table needs no
  UPDATE, ever, so the database refuses it (and DELETE) outright.
* The hash chain lives beside them in ``AuditSeal``: ``seq`` 1, 2, 3 ... (unique),
  the sealed record (unique), ``prev_hash`` and ``hash = SHA-256(prev_hash ||
  canonical JSON of the record)``. Seals are appended *after* commit, in the
  order the sealer finds committed records, by one sealer at a time
  (``audit.services.sealing.audit_seal_pending``; a PostgreSQL advisory lock, which
  the background sealer only tries and ``seal_audit``/``verify_audit`` wait
  for). Money movement therefore never waits on a global audit lock, and the
  chain cannot fork: one writer of seals at a time, and ``seq`` is unique as a
  backstop.
* ``AuditPending`` is the sealer's small work queue: one row per unsealed
  record, keyed by the record's id, inserted in the same transaction as the
  record and deleted when the record is sealed; the sealer drains it in id
  order. Without it, finding unsealed records would be an anti-join
  over the whole (large) record table on every write.
* The window (tamper evidence starts when the record is sealed): a record is
  unsealed from its commit until the next sealer run, at most about one
  ``AUDIT_SEAL_INTERVAL`` (``LEDGERX_AUDIT_SEAL_INTERVAL``, 0.25 s by default).
  The commit wakes a per-process background sealer, which runs at the next
  tick of the wall clock (a multiple of the interval) and seals everything
  queued by every process in one batch (tests seal inline instead, see
  ``AUDIT_SEAL_IN_BACKGROUND``). If another process holds the sealer's lock
  then, it does not queue behind it but retries at the following tick: a
  record that committed after that other sealer read the queue is sealed
  within about two intervals. If the process dies in between, the next sealer
  anywhere or ``manage.py seal_audit`` (cron it every minute) seals the
  record. ``verify_audit`` seals pending records first and then reports any
  record that is neither sealed nor queued as a break; the API shows
  ``hash: null`` for a record still in the window.
* The canonical form that is hashed is ``audit.services.chain.record_canonical``;
  sealing and verification read the record's values the same way.
* ``VerificationRun`` stores the outcome of ``verify_audit`` / ``verify_ledger``
  for the admin dashboard.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from ledgerx.ids import uuid7


class AuditAction(models.TextChoices):
    USER_REGISTERED = "user.registered"
    LOGIN_SUCCEEDED = "auth.login_succeeded"
    LOGIN_FAILED = "auth.login_failed"
    LOGOUT = "auth.logout"
    REFRESH_REUSED = "auth.refresh_reused"
    PASSWORD_CHANGED = "auth.password_changed"
    PIN_SET = "pin.set"
    PIN_FAILED = "pin.failed"
    USER_SUSPENDED = "user.suspended"
    USER_REINSTATED = "user.reinstated"
    ACCOUNT_OPENED = "account.opened"
    ACCOUNT_FROZEN = "account.frozen"
    ACCOUNT_UNFROZEN = "account.unfrozen"
    DEPOSIT_CREATED = "transaction.deposit"
    WITHDRAWAL_CREATED = "transaction.withdrawal"
    TRANSFER_CREATED = "transaction.transfer"
    HOLD_CREATED = "hold.created"
    HOLD_COMMITTED = "hold.committed"
    HOLD_VOIDED = "hold.voided"
    HOLD_EXPIRED = "hold.expired"
    TRANSACTION_REVERSED = "transaction.reversed"
    CONVERSION_CREATED = "transaction.conversion"
    FX_RATE_SET = "fx.rate_set"
    ADMIN_CHANGE = "admin.change"
    ADMIN_EXPORT = "admin.export"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_APPROVED = "approval.approved"
    APPROVAL_REJECTED = "approval.rejected"


class AuditRecord(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)  # time-ordered: see ledgerx.ids
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # covered by audit_actor_idx (actor_id, at DESC)
    )
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    # DjangoJSONEncoder: callers may pass UUIDs, datetimes and Decimals; they are
    # stored (and hashed, since the sealer reads the stored row) as strings.
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["target_id", "-at"], name="audit_target_idx"),
            models.Index(fields=["action", "-at"], name="audit_action_idx"),
            models.Index(fields=["actor", "-at"], name="audit_actor_idx"),
            # The back office finds everything one request did by its id (the X-Request-ID a
            # customer or a log line gives). Partial: records written outside a request have none.
            models.Index(
                fields=["request_id", "-at"], name="audit_request_idx", condition=~models.Q(request_id="")
            ),
        ]
        permissions = [("verify_auditrecord", "Can run and see audit verification")]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"


class AuditSeal(models.Model):
    """One link of the hash chain; see the module's design note."""

    seq = models.BigIntegerField(primary_key=True)
    record = models.OneToOneField(AuditRecord, on_delete=models.PROTECT, related_name="seal")
    prev_hash = models.CharField(max_length=64)
    # Not indexed: nothing looks a seal up by its hash, and uniqueness adds no
    # guarantee (each seal names a unique record and links a unique seq;
    # verify_audit recomputes every hash). Its two indexes (unique, and the
    # LIKE pattern index Django adds for it) were about a third of the
    # database's CPU per sealed record (migration 0007).
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["seq"]
        constraints = [models.CheckConstraint(condition=models.Q(seq__gte=1), name="audit_seal_seq_positive")]

    def __str__(self) -> str:
        return f"seal #{self.seq}"


class AuditPending(models.Model):
    """The sealer's work queue: records committed but not yet sealed, drained in record-id order.

    Every money movement writes a row here, so the row is kept to one column and
    one index: the record's id is the key (ids are time-ordered and, within a
    process, increasing: ``ledgerx.ids``). There is deliberately no foreign key
    to the record: the row is only ever written beside its record, in the same
    statement or transaction (the movement function,
    ``audit.services.records.audit_rows_queued``, ``seed_demo``'s bulk path), and
    records are never deleted (the database refuses it), while the check would
    lock the record just written at every commit. A sequence key, a second index
    and the foreign key each cost every transfer a share of its time
    (measured in bench/RESULTS.md).
    """

    record = models.OneToOneField(
        AuditRecord, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )

    class Meta:
        ordering = ["record"]


class AuditCheckpoint(models.Model):
    """A signed statement "the chain had ``record_count`` records, its head at seal ``seal_seq`` was ``head_hash``".

    Signed with ``LEDGERX_AUDIT_SIGNING_KEY`` (HMAC-SHA256; the key is never in
    the database) and also appended to an external sink
    (``audit.checkpoints``): whoever owns the tables can rewrite records and
    seals consistently, but cannot make a new chain end in a head they cannot
    sign, nor remove what the sink already holds. Append-only like the chain.
    """

    id = models.BigAutoField(primary_key=True)
    seal_seq = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    # The number of records the chain covers up to the head (seals are numbered
    # from 1 without gaps, so it equals ``seal_seq`` on an intact chain; signed
    # separately so a verifier need not assume it).
    record_count = models.BigIntegerField()
    at = models.DateTimeField()
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint at seal #{self.seal_seq}"


class VerificationRun(models.Model):
    class Kind(models.TextChoices):
        AUDIT = "audit", "Audit chain"
        LEDGER = "ledger", "Ledger invariants"

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    ok = models.BooleanField()
    summary = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["kind", "-at"], name="audit_verification_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {'ok' if self.ok else 'FAILED'} at {self.at:%Y-%m-%d %H:%M}"


class Dashboard(VerificationRun):
    """No data of its own: gives the back-office dashboard a place (and a view permission) in the admin."""

    class Meta:
        proxy = True
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"
