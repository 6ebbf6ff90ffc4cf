"""``ledgerx_movement_create`` from its one text: the result gains ``committed`` and ``lock_wait_us``.

The function's text lives in ``transactions/engine/sql/movements.sql``; this
migration loads a frozen copy of it (``0012_movement_function.sql`` next to
this file). Change from 0009: every result row carries the booking moment as
the stored response writes it (for the events written in the same statement)
and how long the accounts' lock took (for the trace's lock-wait span). Deploying: migrate, then restart
the workers (the result gains a column; the old code reads it by position up
to ``booked_at`` only after the restart).
"""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).with_suffix(".sql")).read_text()
PREVIOUS = (Path(__file__).parent / "0009_movement_function.sql").read_text()


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(SQL)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(PREVIOUS)


class Migration(migrations.Migration):
    dependencies = [("transactions", "0011_merge_0010_account_open_holds_index_0010_conversion")]

    operations = [migrations.RunPython(forward, backward)]
