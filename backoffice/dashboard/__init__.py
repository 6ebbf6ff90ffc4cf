"""The back-office dashboard: a page of blocks (``blocks.BLOCKS``), computed on every view.

No page cache: every block is a few index lookups, and the daily volume is
carried forward in a settled rollup (``volume``), so the figures are those of
the moment the page was made.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone

from backoffice.dashboard.blocks import BLOCKS, RANGES

DEFAULT_DAYS = 30


def dashboard_blocks(days: int) -> dict:
    """``{"blocks": [{name, template, data}...], "generated_at"}`` for ``days``."""
    generated_at = timezone.now()
    return {
        "blocks": [{"name": block.name, "template": block.template, "data": block.compute(days)} for block in BLOCKS],
        "generated_at": generated_at,
    }


class DashboardAdmin(admin.ModelAdmin):
    """The dashboard, listed in the admin index under "Audit trail" (its proxy model gives the view permission)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        requested = request.GET.get("days", "")
        days = int(requested) if requested.isdigit() and int(requested) in RANGES else DEFAULT_DAYS
        data = dashboard_blocks(days)
        context = {
            **self.admin_site.each_context(request),
            "title": "Back-office dashboard",
            "subtitle": None,
            "opts": self.model._meta,
            "days": days,
            "ranges": RANGES,
            **data,
            "by_name": {block["name"]: block["data"] for block in data["blocks"]},
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/ledgerx/dashboard.html", context)
