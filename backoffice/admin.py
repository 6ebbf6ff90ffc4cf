"""Registers the back office's own pages on the admin site."""

from django.contrib import admin

from backoffice.views import activity_view

admin.site.register_view("activity/", activity_view, "ledgerx_activity")

from accounts.models import User  # noqa: E402
from backoffice.object_pages import AccountPageAdmin, TransactionPageAdmin, UserPageAdmin  # noqa: E402
from ledger.models import LedgerAccount  # noqa: E402
from transactions.models import Transaction  # noqa: E402

# The account, user and transaction pages with the panels that read the layers above their apps.
for model, page_admin in ((LedgerAccount, AccountPageAdmin), (User, UserPageAdmin), (Transaction, TransactionPageAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, page_admin)

from audit.models import Dashboard  # noqa: E402
from backoffice.dashboard import DashboardAdmin  # noqa: E402

admin.site.register(Dashboard, DashboardAdmin)

from approvals.admin import AuditTrailAdmin  # noqa: E402
from audit.models import AuditRecord  # noqa: E402
from backoffice.timeline import target_link, target_names  # noqa: E402


class AuditTrailPageAdmin(AuditTrailAdmin):
    """The audit trail naming accounts by number and users by email (two lookups by primary key per page)."""

    def get_changelist(self, request, **kwargs):
        base = super().get_changelist(request, **kwargs)

        class NamedChangeList(base):
            def get_results(self, request):
                super().get_results(request)
                names = target_names(list(self.result_list))
                for record in self.result_list:
                    record.target_names = names

        return NamedChangeList

    @admin.display(description="about")
    def target_link(self, obj) -> str:
        return target_link(obj.target_type, obj.target_id, getattr(obj, "target_names", {}))


admin.site.unregister(AuditRecord)
admin.site.register(AuditRecord, AuditTrailPageAdmin)
