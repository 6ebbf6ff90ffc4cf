"""``{% pending_approvals_badge %}``: the count of pending four-eyes requests, for the admin header."""

from django import template
from django.urls import reverse
from django.utils.html import format_html

from approvals.models import ApprovalRequest

register = template.Library()


@register.simple_tag(takes_context=True)
def pending_approvals_badge(context) -> str:
    """A link to the pending queue with its count (an index-only count on approval_status_idx), or nothing."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm("approvals.view_approvalrequest"):
        return ""
    count = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING).count()
    url = reverse("admin:approvals_approvalrequest_changelist") + "?status=pending"
    return format_html(
        '<a href="{}" id="ledgerx-approvals-badge" class="ledgerx-badge{}">Approvals <span>{}</span> pending</a>',
        url, " ledgerx-badge-alert" if count else "", count,
    )
