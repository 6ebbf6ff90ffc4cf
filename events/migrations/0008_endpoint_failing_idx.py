"""A partial index on the failing or disabled webhook endpoints (the dashboard's "failing endpoints" block).

Built with CREATE INDEX CONCURRENTLY on PostgreSQL (hence ``atomic = False``):
the endpoints table is written by every delivery outcome (``failing_since``)
and by the API, and a plain CREATE INDEX would hold off those writes while it
reads the whole table; concurrently it only waits for them. SQLite has no such
option and builds it in the usual way.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.migrations.operations import AddIndex


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("events", "0007_xid_defaults")]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="webhookendpoint",
            index=models.Index(
                fields=["failing_since", "-created_at"],
                name="events_endpoint_failing_idx",
                condition=models.Q(failing_since__isnull=False) | models.Q(status="disabled"),
            ),
        ),
    ]
