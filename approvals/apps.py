from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The last app: every admin module is registered by now (django.contrib.admin
        # autodiscovers in its own ready()). Restrict every list to its offered filters.
        from django.contrib import admin

        from audit.admin_tools import lookups_restrict

        lookups_restrict(admin.site)
