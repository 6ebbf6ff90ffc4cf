from django.apps import AppConfig


class BackOfficeConfig(AppConfig):
    """The back office's pages that read every app: activity timelines, the dashboard, CSV exports.

    The top of the dependency order (it reads accounts, ledger, transactions,
    audit, approvals and events); nothing imports it. Its pages are admin
    views registered on the site (``admin.py``).
    """

    name = "backoffice"
    verbose_name = "Back office"
