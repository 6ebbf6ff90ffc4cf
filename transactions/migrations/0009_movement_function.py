"""``ledgerx_movement_create`` from its one text: the booking moment, the balance limit, audit always.

The function's text lives in ``transactions/engine/sql/movements.sql``; this
migration loads a frozen copy of it (``0009_movement_function.sql`` next to
this file), so later edits of the engine's file need a new migration with a
new copy, and ``transactions/tests/test_movement_function.py`` fails while
the installed function and the file differ. Changes from 0007: committed_at
(row, stored response, audit data) is the booking moment taken under the
locks; a balance past 2^53 - 1 is refused (``balance_limit``); the audit
record is always written; the key is probed first and bound after the checks.
Deploying: migrate, then restart the workers (the result gains a column).
"""

import importlib
from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).with_suffix(".sql")).read_text()


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(SQL)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        previous = importlib.import_module("transactions.migrations.0007_movement_returns_account_state")
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(previous.FORWARD)


class Migration(migrations.Migration):
    dependencies = [("transactions", "0008_batches")]

    operations = [migrations.RunPython(forward, backward)]
