"""Drop django-auditlog's ``auditlog_logentry`` table, left by databases migrated before the app was removed,
when that is safe: the table exists, django-auditlog is not installed, and it holds no row.

A table with rows is kept, untouched, and the migration says so: its entries
(edits of users and accounts made through the admin while django-auditlog was
installed) may be the only record of some of them, so they are archived by
an operator, then the table dropped by hand (README, "One audit trail").
Dropping it also forgets django-auditlog's applied migrations, so the app
could be installed again onto a clean slate. Nothing to undo backwards: an
empty table carried nothing.
"""

from django.db import migrations

TABLE = "auditlog_logentry"


def drop_if_empty(apps, schema_editor):
    from django.apps import apps as installed

    connection = schema_editor.connection
    if installed.is_installed("auditlog") or TABLE not in connection.introspection.table_names():
        return
    quoted = connection.ops.quote_name(TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {quoted} LIMIT 1) AS any_row")
        if cursor.fetchone()[0]:
            cursor.execute(f"SELECT COUNT(*) FROM {quoted}")
            print(
                f"\n  {TABLE} kept: it holds {cursor.fetchone()[0]} entries of django-auditlog (no longer installed). "
                f"Archive them, then DROP TABLE {TABLE}."
            )
            return
        cursor.execute(f"DROP TABLE {quoted}")
        cursor.execute("DELETE FROM django_migrations WHERE app = %s", ["auditlog"])


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(drop_if_empty, migrations.RunPython.noop, elidable=True)]
