"""Append-only audit records.

Records are written by services inside the same database transaction as the
change they describe. (The hash chain over them is sealed separately; see
``audit.services``.)
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


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
    ADMIN_CHANGE = "admin.change"


class AuditRecord(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["target_id", "-at"], name="audit_target_idx"),
            models.Index(fields=["action", "-at"], name="audit_action_idx"),
            models.Index(fields=["actor", "-at"], name="audit_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type}:{self.target_id}"
