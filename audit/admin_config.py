"""``django.contrib.admin`` with the LedgerX site as ``admin.site`` (kept apart: an app config module must not import models)."""

from django.contrib.admin.apps import AdminConfig


class BackOfficeAdminConfig(AdminConfig):
    default_site = "audit.admin_site.BackOfficeSite"
