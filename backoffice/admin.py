"""Registers the back office's own pages on the admin site."""

from django.contrib import admin

from backoffice.views import activity_view

admin.site.register_view("activity/", activity_view, "ledgerx_activity")

from accounts.models import User  # noqa: E402
from backoffice.object_pages import AccountPageAdmin, UserPageAdmin  # noqa: E402
from ledger.models import LedgerAccount  # noqa: E402

# The account and user pages with the panels that read the layers above their apps.
for model, page_admin in ((LedgerAccount, AccountPageAdmin), (User, UserPageAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, page_admin)

from audit.models import Dashboard  # noqa: E402
from backoffice.dashboard import DashboardAdmin  # noqa: E402

admin.site.register(Dashboard, DashboardAdmin)
