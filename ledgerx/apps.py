from django.apps import AppConfig


class LedgerXConfig(AppConfig):
    """The project package as an app: it has no models, only the project's system checks."""

    name = "ledgerx"
    verbose_name = "LedgerX"

    def ready(self):
        from ledgerx import checks  # noqa: F401 - registers the checks
