"""Events carry their position in the log, ``xid`` (see ``events.models``), and are listed by it.

Existing events get 0: they keep their id order, before every newer event. Events written by
the old version while it still serves get the right position from the column default (below).
Adding a column with a constant default rewrites nothing on PostgreSQL. The
recipients' list indexes gain the position (and replace the id-only ones):
building them locks event inserts on a large table for the time of the build.
"""

from django.db import migrations, models

# The old version keeps serving while this runs and writes events without the column: on
# PostgreSQL the column's database default is the writer's transaction id (what the new version
# writes explicitly), so those events are placed right and no insert fails. Django does not know
# this default; an AlterField of ``xid`` would drop it.
FORWARD = r"""
ALTER TABLE events_event ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint;
ALTER TABLE events_eventrecipient ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint;
"""
BACKWARD = r"""
ALTER TABLE events_event ALTER COLUMN xid DROP DEFAULT;
ALTER TABLE events_eventrecipient ALTER COLUMN xid DROP DEFAULT;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("events", "0002_append_only_triggers")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="xid",
            field=models.BigIntegerField(default=0, editable=False),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="eventrecipient",
            name="xid",
            field=models.BigIntegerField(default=0, editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(forward, backward),
        migrations.AlterModelOptions(name="event", options={"ordering": ["-xid", "-id"]}),
        migrations.AddIndex(
            model_name="eventrecipient",
            index=models.Index(fields=["user", "-xid", "-event"], name="events_recipient_pos_idx"),
        ),
        migrations.AddIndex(
            model_name="eventrecipient",
            index=models.Index(fields=["user", "type", "-xid", "-event"], name="events_recipient_type_pos_idx"),
        ),
        migrations.RemoveIndex(model_name="eventrecipient", name="events_recipient_user_idx"),
        migrations.RemoveIndex(model_name="eventrecipient", name="events_recipient_type_idx"),
    ]
