"""Four-eyes approval requests: a back-office action that waits for a second admin.

A request names the action and its target, who asked and why. It is decided
once (approved or rejected, with the decider's reason); an approved request's
action is carried out in the same database transaction as the decision
(``approvals.services``). At most one request per action and target is pending
at a time (a partial unique constraint), so a double click cannot queue two
reversals of one transaction.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ledgerx.ids import uuid7


class ApprovalRequest(models.Model):
    class Action(models.TextChoices):
        TRANSACTION_REVERSE = "transaction.reverse", "Reverse transaction"
        USER_REINSTATE = "user.reinstate", "Reinstate user"

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    action = models.CharField(max_length=40, choices=Action.choices)
    target_id = models.UUIDField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True, db_index=False
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    # The object the approved action created (a reversal's transaction id), if any.
    result_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at", "-id"], name="approval_status_idx"),
            models.Index(fields=["-created_at", "-id"], name="approval_created_idx"),
            models.Index(fields=["target_id"], name="approval_target_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["action", "target_id"], condition=Q(status="pending"), name="approval_one_pending_per_target"
            ),
            models.CheckConstraint(
                condition=Q(status="pending", decided_by__isnull=True, decided_at__isnull=True)
                | (~Q(status="pending") & Q(decided_by__isnull=False, decided_at__isnull=False)),
                name="approval_decided_fields",
            ),
        ]
        permissions = [("decide_approvalrequest", "Can approve and reject four-eyes requests")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.target_id} ({self.status})"
