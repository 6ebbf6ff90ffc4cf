"""Events carry their position in the log, ``xid`` (see ``events.models``), and are listed by it.

Existing events get 0: they keep their id order, before every newer event.
Adding a column with a constant default rewrites nothing on PostgreSQL. The
recipients' list indexes gain the position (and replace the id-only ones):
building them locks event inserts on a large table for the time of the build.
"""

from django.db import migrations, models


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
