"""The deliveries being sent, by endpoint: what the claim counts to hold each endpoint to its limit across workers.

Partial (claimed rows only: an outcome clears the claim), so it stays as small
as the work in flight.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("events", "0003_event_xid")]

    operations = [
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("claimed_until__isnull", False)),
                fields=["endpoint", "claimed_until"],
                name="events_delivery_leased_idx",
            ),
        ),
    ]
