"""Four-eyes approvals: request, approve, reject.

``transaction_reverse_requested`` and ``user_reinstate_requested`` are what the
back office (API and admin) calls: below the configured threshold they act at
once through the owning service; at or above it they only write a pending
``ApprovalRequest``. A second admin's ``approval_approve`` then carries out the
action with the owning service's inner writer (``reversal_write``,
``user_reinstate`` which joins the caller's transaction) inside ONE durable
transaction that also records the decision: either both commit or neither
(a reversal refused for insufficient funds leaves the request pending).

Every step writes an audit record in its own transaction: ``approval.requested``,
``approval.approved`` (beside the action's own record, which names the
request), ``approval.rejected``. The requester may reject (withdraw) their own
request but never approve it.
"""

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import backoffice_actor_check, user_reinstate
from approvals.models import ApprovalRequest
from audit.models import AuditAction
from audit.services import audit_record
from ledgerx.exceptions import Forbidden, InvalidState, NotFound
from ledgerx.text import reason_clean
from transactions.models import Transaction
from transactions.services import reversal_write, transaction_reverse


def reversal_needs_approval(transaction: Transaction) -> bool:
    """At or above its currency's ``FOUR_EYES_AMOUNT``; a currency not configured never needs one."""
    threshold = settings.FOUR_EYES_AMOUNT.get(transaction.currency)
    return threshold is not None and transaction.amount >= threshold


def reinstatement_needs_approval() -> bool:
    return bool(settings.FOUR_EYES_REINSTATE)


def _request_create(*, actor, action: str, target_id, reason: str) -> ApprovalRequest:
    try:
        with db_transaction.atomic(durable=True):
            approval = ApprovalRequest.objects.create(
                action=action, target_id=target_id, requested_by=actor, reason=reason
            )
            audit_record(
                actor=actor,
                action=AuditAction.APPROVAL_REQUESTED,
                target_type="approval",
                target_id=approval.pk,
                data={"action": action, "target_id": str(target_id), "reason": reason},
            )
    except IntegrityError:
        pending = ApprovalRequest.objects.filter(action=action, target_id=target_id, status="pending").first()
        raise InvalidState(
            f"An approval request for this is already pending ({pending.pk if pending else 'just decided'})."
        ) from None
    return approval


def transaction_reverse_requested(*, actor, transaction: Transaction, reason: str) -> Transaction | ApprovalRequest:
    """Reverse now (the reversal) or, at or above the threshold, ask a second admin (the pending request).

    A request is refused up front for what would make the reversal itself fail
    on its state (InvalidState: a reversal, not committed, already reversed),
    so nobody approves the impossible. Raises ValidationFailed, UserSuspended,
    InvalidState, InsufficientFunds (reversing at once).
    """
    reason = reason_clean(reason)
    backoffice_actor_check(actor)
    if not reversal_needs_approval(transaction):
        return transaction_reverse(actor=actor, transaction=transaction, reason=reason)
    if transaction.type == Transaction.Type.REVERSAL:
        raise InvalidState("A reversal cannot be reversed.")
    if transaction.status != Transaction.Status.COMMITTED:
        raise InvalidState(f"Only committed transactions can be reversed; this one is {transaction.status}.")
    return _request_create(
        actor=actor, action=ApprovalRequest.Action.TRANSACTION_REVERSE, target_id=transaction.pk, reason=reason
    )


def user_reinstate_requested(*, actor, user: User, reason: str) -> User | ApprovalRequest:
    """Reinstate now (the user) or, with ``FOUR_EYES_REINSTATE``, ask a second admin (the pending request).

    Raises ValidationFailed, UserSuspended (the actor), InvalidState (the user is not suspended).
    """
    reason = reason_clean(reason)
    if not reinstatement_needs_approval():
        return user_reinstate(actor=actor, user=user, reason=reason)
    backoffice_actor_check(actor)
    if User.objects.filter(pk=user.pk, status=User.Status.SUSPENDED).exists() is False:
        raise InvalidState("The user is already active.")
    return _request_create(actor=actor, action=ApprovalRequest.Action.USER_REINSTATE, target_id=user.pk, reason=reason)


def _locked_pending(approval_id) -> ApprovalRequest:
    try:
        locked = ApprovalRequest.objects.select_for_update().get(pk=approval_id)
    except ApprovalRequest.DoesNotExist:
        raise NotFound() from None
    if locked.status != ApprovalRequest.Status.PENDING:
        raise InvalidState(f"This request was already {locked.status}.")
    return locked


def _carry_out(*, actor, approval: ApprovalRequest) -> str | None:
    """The approved action, in the caller's transaction; the id of what it created, if anything."""
    if approval.action == ApprovalRequest.Action.TRANSACTION_REVERSE:
        original = Transaction.objects.select_related("entry").get(pk=approval.target_id)
        reversal = reversal_write(
            actor=actor,
            transaction=original,
            reason=approval.reason,
            approval=str(approval.pk),
            requested_by=str(approval.requested_by_id),
        )
        return reversal.pk
    if approval.action == ApprovalRequest.Action.USER_REINSTATE:
        user_reinstate(actor=actor, user=User.objects.get(pk=approval.target_id), reason=approval.reason)
        return None
    raise InvalidState(f"Unknown action {approval.action}.")


def _decide(*, actor, approval: ApprovalRequest, reason: str, approve: bool) -> ApprovalRequest:
    reason = reason_clean(reason)
    backoffice_actor_check(actor)
    with db_transaction.atomic(durable=True):
        locked = _locked_pending(approval.pk)
        if approve and locked.requested_by_id == actor.pk:
            raise Forbidden("You requested this; another admin must approve it.")
        result_id = _carry_out(actor=actor, approval=locked) if approve else None
        locked.status = ApprovalRequest.Status.APPROVED if approve else ApprovalRequest.Status.REJECTED
        locked.decided_by = actor
        locked.decided_at = timezone.now()
        locked.decision_reason = reason
        locked.result_id = result_id
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_reason", "result_id"])
        audit_record(
            actor=actor,
            action=AuditAction.APPROVAL_APPROVED if approve else AuditAction.APPROVAL_REJECTED,
            target_type="approval",
            target_id=locked.pk,
            data={
                "action": locked.action,
                "target_id": str(locked.target_id),
                "requested_by": str(locked.requested_by_id),
                "reason": reason,
                "result_id": str(result_id) if result_id else None,
            },
        )
    return locked


def approval_approve(*, actor, approval: ApprovalRequest, reason: str) -> ApprovalRequest:
    """Approve and carry out the action, atomically with the decision.

    Raises ValidationFailed (empty reason), UserSuspended (the actor),
    NotFound, InvalidState (already decided, or the action's own state check),
    Forbidden (the actor requested it), and whatever the action raises
    (InsufficientFunds): then nothing is written and the request stays pending.
    """
    return _decide(actor=actor, approval=approval, reason=reason, approve=True)


def approval_reject(*, actor, approval: ApprovalRequest, reason: str) -> ApprovalRequest:
    """Reject (the requester may: a withdrawal). Raises ValidationFailed, UserSuspended, NotFound, InvalidState."""
    return _decide(actor=actor, approval=approval, reason=reason, approve=False)
