"""Deliveries carry their event's position in the log, and the worker's queue orders by it after the due time.

Existing deliveries get 0 (their id order stays, as before). The queue's index
is partial (pending deliveries only), so rebuilding it is quick.
"""

from django.db import migrations, models

# As in 0003: the old version's fan-out INSERT names no ``xid``; on PostgreSQL the database
# default takes the writer's transaction id, so its deliveries are placed right and never fail.
FORWARD = "ALTER TABLE events_delivery ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint"
BACKWARD = "ALTER TABLE events_delivery ALTER COLUMN xid DROP DEFAULT"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("events", "0004_delivery_leased_index")]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="xid",
            field=models.BigIntegerField(default=0, editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(forward, backward),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["next_attempt_at", "xid", "id"],
                name="events_delivery_due_pos_idx",
            ),
        ),
        migrations.RemoveIndex(model_name="delivery", name="events_delivery_due_idx"),
    ]
