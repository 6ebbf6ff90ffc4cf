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


# --- The audit trail, searchable by what staff see on the pages -------------------------------
# Re-registered here because it reads the books (accounts, transactions) to resolve a term,
# and audit depends on no other app; approvals is the top of the back office.

from audit.admin import AuditRecordAdmin as _AuditRecordAdmin  # noqa: E402
from audit.models import AuditRecord  # noqa: E402

TIMELINE_TRANSACTIONS = 200  # an account's latest transactions whose records its search shows


class AuditTrailAdmin(_AuditRecordAdmin):
    """Also finds an account's records by its number, with the money it moved, and a reversal under the original.

    Each step is an index lookup: the account by its unique number, its latest
    transactions by the keyset indexes on source and destination, the reversal
    by the unique ``reverses`` column; then records by ``audit_target_idx``.
    """

    list_display = ("at", "action", "actor", "target_link", "reason")

    _TARGET_PAGES = {
        "transaction": "admin:transactions_transaction_change",
        "ledger_account": "admin:ledger_ledgeraccount_change",
        "user": "admin:accounts_user_change",
        "approval": "admin:approvals_approvalrequest_change",
    }

    @admin.display(description="about")
    def target_link(self, obj) -> str:
        page = self._TARGET_PAGES.get(obj.target_type)
        if page is None or term_uuid(obj.target_id) is None:
            return f"{obj.target_type} {obj.target_id}"
        return format_html('{} <a href="{}">{}</a>', obj.target_type, reverse(page, args=[obj.target_id]), obj.target_id)

    @admin.display(description="reason")
    def reason(self, obj) -> str:
        data = obj.data if isinstance(obj.data, dict) else {}
        return data.get("reason") or "-"

    search_help_text = (
        "Search by account number (its records and those of its latest transactions), the id of a user, "
        "account or transaction (a transaction's reversal included), a record id, or an email (exact)."
    )

    def search_condition(self, term: str) -> Q | None:
        from ledger.admin import ACCOUNT_NUMBER
        from ledger.models import LedgerAccount
        from transactions.models import Transaction

        if ACCOUNT_NUMBER.fullmatch(term):
            account_pk = LedgerAccount.objects.filter(number=term.upper()).values_list("pk", flat=True).first()
            if account_pk is None:
                return Q(pk__in=[])
            latest = [
                *Transaction.objects.filter(source_account_id=account_pk).order_by("-created_at", "-id")
                .values_list("pk", flat=True)[:TIMELINE_TRANSACTIONS],
                *Transaction.objects.filter(destination_account_id=account_pk).order_by("-created_at", "-id")
                .values_list("pk", flat=True)[:TIMELINE_TRANSACTIONS],
            ]
            reversals = Transaction.objects.filter(reverses_id__in=latest).values_list("pk", flat=True)
            return Q(target_id__in=[str(account_pk), *(str(pk) for pk in [*latest, *reversals])])
        condition = super().search_condition(term)
        txn_pk = term_uuid(term)
        if condition is not None and txn_pk is not None:
            reversal = Transaction.objects.filter(reverses_id=txn_pk).values_list("pk", flat=True).first()
            if reversal is not None:
                condition |= Q(target_id=str(reversal))
        return condition


admin.site.unregister(AuditRecord)
admin.site.register(AuditRecord, AuditTrailAdmin)
