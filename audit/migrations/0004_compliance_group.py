"""Creates the Compliance group (see ``audit.compliance``).

Permissions are created explicitly: ``post_migrate``, which normally creates
them, has not run yet when this migration does.
"""

from django.db import migrations


def forward(apps, schema_editor):
    from audit.compliance import compliance_group_sync

    compliance_group_sync(apps)


def backward(apps, schema_editor):
    from audit.compliance import GROUP_NAME

    apps.get_model("auth", "Group").objects.filter(name=GROUP_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_append_only_triggers"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0001_initial"),
        ("ledger", "0001_initial"),
        ("transactions", "0001_initial"),
    ]

    operations = [migrations.RunPython(forward, backward)]
