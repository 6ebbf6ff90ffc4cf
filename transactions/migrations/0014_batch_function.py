"""``ledgerx_batch_apply``: a batch's items (or one conversion) in ONE call, from its one text.

The function's text lives in ``transactions/engine/sql/batches.sql``; this
migration loads a frozen copy of it (``0014_batch_function.sql`` next to this
file). A later change of the text is a new migration with its own copy.
"""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).with_suffix(".sql")).read_text()
DROP = (
    "DROP FUNCTION IF EXISTS ledgerx_batch_apply(bigint, boolean, uuid, text, text, text, uuid, boolean, text[], "
    "bigint[], uuid[], uuid[], boolean[], uuid[], text[], jsonb[], uuid[], uuid[], uuid[], uuid, uuid[], interval, "
    "jsonb, jsonb, inet, text)"
)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(SQL)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("transactions", "0013_conversion_shape")]

    operations = [migrations.RunPython(forward, backward)]
