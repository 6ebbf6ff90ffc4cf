"""PostgreSQL refuses UPDATE and DELETE of events and of their recipients (append-only, like audit).

Uses ``audit_refuse_change()`` from ``audit/0003``. TRUNCATE stays possible
(table owner only; the test suite flushes with it). There is no pruning path:
events are kept (the contract promises at least 30 days). On SQLite there are
no such triggers.
"""

from django.db import migrations

FORWARD = r"""
CREATE TRIGGER events_event_append_only
    BEFORE UPDATE OR DELETE ON events_event
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();

CREATE TRIGGER events_eventrecipient_append_only
    BEFORE UPDATE OR DELETE ON events_eventrecipient
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS events_eventrecipient_append_only ON events_eventrecipient;
DROP TRIGGER IF EXISTS events_event_append_only ON events_event;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial"), ("audit", "0003_append_only_triggers")]

    operations = [migrations.RunPython(forward, backward)]
