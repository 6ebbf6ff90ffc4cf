"""PostgreSQL refuses UPDATE and DELETE of audit records and of the chain's seals.

TRUNCATE stays possible (it needs table ownership; the test suite flushes with
it). ``audit_auditpending`` is a work queue and is not protected: losing a queue
row leaves a record unsealed, which ``verify_audit`` reports as a break.
On SQLite there are no such triggers; ``verify_audit`` detects tampering there.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_auditrecord_append_only
    BEFORE UPDATE OR DELETE ON audit_auditrecord
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();

CREATE TRIGGER audit_auditseal_append_only
    BEFORE UPDATE OR DELETE ON audit_auditseal
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS audit_auditseal_append_only ON audit_auditseal;
DROP TRIGGER IF EXISTS audit_auditrecord_append_only ON audit_auditrecord;
DROP FUNCTION IF EXISTS audit_refuse_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_chain_seals")]

    operations = [migrations.RunPython(forward, backward)]
