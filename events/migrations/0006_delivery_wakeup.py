"""Waking idle workers: a NOTIFY on ``ledgerx_deliveries`` when a delivery is inserted while a worker waits.

Row-level, so a movement that creates no delivery runs nothing; it notifies
only while a ``DeliveryWaiter`` row is current (an idle worker's), because
PostgreSQL serializes the commits of notifying transactions. Polling stays
the fallback (a missed or unsent NOTIFY only delays a delivery by one poll).
SQLite: no trigger (its worker polls).
"""

from django.db import migrations, models

FORWARD = r"""
CREATE FUNCTION events_delivery_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM events_deliverywaiter w WHERE w.until > now()) THEN
        PERFORM pg_notify('ledgerx_deliveries', '');  -- one per transaction: identical notifications fold
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_delivery_wake AFTER INSERT ON events_delivery
    FOR EACH ROW EXECUTE FUNCTION events_delivery_wake();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS events_delivery_wake ON events_delivery;
DROP FUNCTION IF EXISTS events_delivery_wake();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("events", "0005_delivery_xid")]

    operations = [
        migrations.CreateModel(
            name="DeliveryWaiter",
            fields=[
                ("worker_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("until", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(forward, backward),
    ]
