"""The Approvals queue of the back office: pending four-eyes requests, approve or reject with a reason.

The actions call ``approval_approve`` / ``approval_reject``, the same services
as the API, so the requester cannot approve their own request here either
(the refusal is shown as a message naming it).
"""

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from approvals.models import ApprovalRequest
from approvals.services import approval_approve, approval_reject
from audit.admin_tools import FixedChoicesFilter, ObjectActionsAdmin, ReadOnlyAdmin, reason_action, term_uuid
from audit.compliance import PERM_DECIDE


def approval_or_result(obj, result) -> str:
    """The success line of an action that may have become an approval request."""
    if isinstance(result, ApprovalRequest):
        return f"{obj} (waits for a second admin: approval request {result.pk})"
    return str(obj)


class StatusFilter(FixedChoicesFilter):
    title = "status"
    parameter_name = "status"
    field_name = "status"

    def choices_for(self):
        return list(ApprovalRequest.Status.choices)


_TARGET_ADMIN = {
    ApprovalRequest.Action.TRANSACTION_REVERSE: "admin:transactions_transaction_change",
    ApprovalRequest.Action.USER_REINSTATE: "admin:accounts_user_change",
}


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ObjectActionsAdmin, ReadOnlyAdmin):
    list_display = ("created_at", "action", "target_link", "requested_by", "reason", "status", "decided_by", "decided_at")
    list_filter = (StatusFilter,)
    list_select_related = ("requested_by", "decided_by")
    search_help_text = "Search by request id or target id (exact)."
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    actions = ("approve_requests", "reject_requests")
    fields = (
        "id", "action", "target_link", "requested_by", "reason", "created_at", "status",
        "decided_by", "decided_at", "decision_reason", "result_link",
    )
    readonly_fields = fields

    def search_condition(self, term: str) -> Q | None:
        value = term_uuid(term)
        return Q(pk=value) | Q(target_id=value) if value is not None else None

    def object_actions(self, request, obj) -> list[tuple[str, str]]:
        if obj.status == ApprovalRequest.Status.PENDING:
            return [("approve_requests", "Approve"), ("reject_requests", "Reject")]
        return []

    def has_decide_permission(self, request) -> bool:
        return request.user.has_perm(PERM_DECIDE)

    @admin.display(description="target")
    def target_link(self, obj: ApprovalRequest) -> str:
        url = reverse(_TARGET_ADMIN[obj.action], args=[obj.target_id])
        return format_html('<a href="{}">{}</a>', url, obj.target_id)

    @admin.display(description="result")
    def result_link(self, obj: ApprovalRequest) -> str:
        if obj.result_id is None:
            return "-"
        url = reverse("admin:transactions_transaction_change", args=[obj.result_id])
        return format_html('<a href="{}">{}</a>', url, obj.result_id)

    @admin.action(description="Approve selected requests (carries out the action)", permissions=["decide"])
    def approve_requests(self, request, queryset):
        return reason_action(
            self, request, queryset,
            title="Approve requests",
            verb="Approve",
            service=lambda *, actor, obj, reason: approval_approve(actor=actor, approval=obj, reason=reason),
            explanation="Approving carries out the requested action at once, together with your decision. "
            "You cannot approve a request you made; a request already decided is refused.",
        )

    @admin.action(description="Reject selected requests", permissions=["decide"])
    def reject_requests(self, request, queryset):
        return reason_action(
            self, request, queryset,
            title="Reject requests",
            verb="Reject",
            service=lambda *, actor, obj, reason: approval_reject(actor=actor, approval=obj, reason=reason),
            explanation="Rejecting closes the request; nothing is carried out. A requester may withdraw their own.",
        )
