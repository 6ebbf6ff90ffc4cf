from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _compliance_group_restore(sender, app_config=None, using="default", apps=None, **kwargs):
    """Re-create the Compliance group after a flush (test databases) or on a fresh migrate."""
    from audit.compliance import compliance_group_sync

    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    compliance_group_sync(apps)


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from audit.admin_reauth import on_login

        post_migrate.connect(_compliance_group_restore, sender=self, dispatch_uid="audit_compliance_group")
        user_logged_in.connect(on_login, dispatch_uid="audit_admin_password_proof")
