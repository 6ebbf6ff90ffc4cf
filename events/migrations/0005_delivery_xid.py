"""Deliveries carry their event's position in the log, and the worker's queue orders by it after the due time.

Existing deliveries get 0 (their id order stays, as before). The queue's index
is partial (pending deliveries only), so rebuilding it is quick.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("events", "0004_delivery_leased_index")]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="xid",
            field=models.BigIntegerField(default=0, editable=False),
            preserve_default=False,
        ),
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
