"""A case-insensitive prefix index on users' names for the back office's user search (PostgreSQL).

``lower(full_name) text_pattern_ops``: serves ``lower(full_name) LIKE 'ada lo%'``
whatever the database's collation (a plain btree serves LIKE only under the C
collation). Prefix rather than trigram: staff type the start of a name, and a
btree adds no extension and less write cost than a GIN trigram index. SQLite
has no operator classes; its LIKE is case-insensitive already, on small data.
Emails need nothing new: the unique email column already has Django's
``varchar_pattern_ops`` index (``accounts_user_email_*_like``).
"""

from django.db import migrations

INDEX = "accounts_user_name_prefix_idx"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_user (lower(full_name) text_pattern_ops)")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
