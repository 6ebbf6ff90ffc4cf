"""The log positions' PostgreSQL defaults, for databases that applied ``0003``/``0005`` before those set them.

The column default is the writer's transaction id, so a version that knows no
``xid`` (the previous one, still serving during a deploy) writes events,
recipients and deliveries at the right place. SET DEFAULT is idempotent. Also:
events keep the primary key as their default ordering (the log's order is
read from the recipients' index; a model-wide ``-xid`` order would be an
unindexed sort wherever a plain event query is ordered).
"""

from django.db import migrations

FORWARD = r"""
ALTER TABLE events_event ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint;
ALTER TABLE events_eventrecipient ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint;
ALTER TABLE events_delivery ALTER COLUMN xid SET DEFAULT pg_current_xact_id()::text::bigint;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("events", "0006_delivery_wakeup")]

    operations = [
        migrations.RunPython(forward, migrations.RunPython.noop),
        migrations.AlterModelOptions(name="event", options={"ordering": ["-id"]}),
    ]
