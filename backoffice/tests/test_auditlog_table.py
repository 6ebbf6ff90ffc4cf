"""The leftover django-auditlog table: dropped when empty, kept (and said so) when it holds entries."""

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection

pytestmark = pytest.mark.django_db
migration = importlib.import_module("backoffice.migrations.0001_drop_empty_auditlog_table")


def _leftover_table(rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE auditlog_logentry (id integer PRIMARY KEY, changes text NOT NULL)")
        for pk in range(rows):
            cursor.execute("INSERT INTO auditlog_logentry (id, changes) VALUES (%s, %s)", [pk + 1, '{"status": ["active", "frozen"]}'])
        cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('auditlog', '0017_add_actor_email', CURRENT_TIMESTAMP)")


def _run() -> None:
    # The operation reads only the editor's connection (SQLite refuses a real editor inside a test's transaction).
    migration.drop_if_empty(apps, SimpleNamespace(connection=connection))


def _auditlog_migrations() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM django_migrations WHERE app = 'auditlog'")
        return cursor.fetchone()[0]


def test_django_auditlog_is_not_installed():
    assert not apps.is_installed("auditlog")
    assert "auditlog_logentry" not in connection.introspection.table_names()  # a new database never had it


def test_an_empty_leftover_table_is_dropped_with_its_migration_records():
    _leftover_table(rows=0)
    _run()
    assert "auditlog_logentry" not in connection.introspection.table_names()
    assert _auditlog_migrations() == 0


def test_a_leftover_table_with_entries_is_kept_and_named(capsys):
    _leftover_table(rows=2)
    _run()
    assert "auditlog_logentry" in connection.introspection.table_names()
    assert _auditlog_migrations() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM auditlog_logentry")
        assert cursor.fetchone()[0] == 2
    assert "auditlog_logentry kept: it holds 2 entries" in capsys.readouterr().out


def test_without_the_table_nothing_happens():
    _run()
    assert "auditlog_logentry" not in connection.introspection.table_names()
