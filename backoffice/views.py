"""The back office's own pages (registered on the admin site by ``backoffice.admin``)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse

from backoffice.timeline import Cursor, timeline_for, timeline_page

ACTIVITY_HELP = (
    "Search by account number (e.g. 100000000042), email, transaction id or request id (exact; "
    "a user, account or transaction id works too)."
)


def activity_view(request):
    """One activity timeline: audit records and money movements merged newest first, paged by keyset."""
    if not request.user.has_perm("audit.view_auditrecord"):
        raise PermissionDenied
    term = request.GET.get("q", "").strip()
    timeline = timeline_for(term) if term else None
    page = None
    if timeline is not None:
        after = request.GET.get("after")
        cursor = Cursor.decode(after) if after else None
        if after and cursor is None:
            messages.warning(request, "That page link is no longer valid; showing the newest activity.")
        page = timeline_page(timeline, cursor=cursor)
    elif term:
        messages.warning(request, f'Nothing found for "{term}". {ACTIVITY_HELP}')
    context = {
        **admin.site.each_context(request),
        "title": timeline.title if timeline else "Activity",
        "subtitle": None,
        "term": term,
        "timeline": timeline,
        "page": page,
        "help_text": ACTIVITY_HELP,
        "subject_links": _subject_links(timeline) if timeline else [],
    }
    request.current_app = admin.site.name
    return TemplateResponse(request, "admin/ledgerx/timeline.html", context)


def _subject_links(timeline) -> list[tuple[str, str]]:
    subject = timeline.subject
    if timeline.kind == "account":
        links = [("Account page", reverse("admin:ledger_ledgeraccount_change", args=[subject.pk]))]
        if subject.owner_id:
            links.append((f"Owner {subject.owner.email}", reverse("admin:accounts_user_change", args=[subject.owner_id])))
        return links
    if timeline.kind == "user":
        return [
            ("User page", reverse("admin:accounts_user_change", args=[subject.pk])),
            ("Accounts", reverse("admin:ledger_ledgeraccount_changelist") + f"?q={subject.email}"),
        ]
    if timeline.kind == "transaction":
        return [("Transaction page", reverse("admin:transactions_transaction_change", args=[subject.pk]))]
    return []
