"""Signed checkpoints, and PostgreSQL refuses TRUNCATE of the append-only tables.

TRUNCATE skips row triggers, so the UPDATE/DELETE guards of audit/0003 and
ledger/0002 never saw it; a statement trigger now refuses it on the audit
records, seals and checkpoints and on postings and journal entries. The only
exception is a test database (its name starts with ``test_``) whose session
opted in with ``SET ledgerx.allow_truncate = 'on'``: the test suite empties its
tables between tests that way. Whoever owns the tables can still drop or
disable any trigger; that is what the separate application role (``manage.py
db_app_role``) and the signed checkpoints are for.
"""

from django.db import migrations, models

FORWARD = r"""
CREATE OR REPLACE FUNCTION ledgerx_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_database() LIKE 'test\_%' AND current_setting('ledgerx.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_auditcheckpoint_append_only
    BEFORE UPDATE OR DELETE ON audit_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
"""

TABLES = ("audit_auditrecord", "audit_auditseal", "audit_auditcheckpoint", "ledger_posting", "ledger_journalentry")
FORWARD += "".join(
    f"\nCREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION ledgerx_refuse_truncate();"
    for table in TABLES
)

BACKWARD = "".join(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};\n" for table in TABLES) + (
    "DROP TRIGGER IF EXISTS audit_auditcheckpoint_append_only ON audit_auditcheckpoint;\n"
    "DROP FUNCTION IF EXISTS ledgerx_refuse_truncate();\n"
)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0009_queue_keyed_by_record"),
        ("ledger", "0003_drop_redundant_fk_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("seal_seq", models.BigIntegerField()),
                ("head_hash", models.CharField(max_length=64)),
                ("record_count", models.BigIntegerField()),
                ("at", models.DateTimeField()),
                ("signature", models.CharField(max_length=64)),
            ],
            options={"ordering": ["-id"]},
        ),
        migrations.RunPython(forward, backward),
    ]
