"""The application's PostgreSQL role: everything the web and worker processes need, and no more.

The tables' owner (``DATABASE_MIGRATE_URL``) runs migrations; the processes
connect as this role (``DATABASE_URL``). It does not own the tables, so it can
neither drop nor disable their triggers, and on the append-only tables (audit
records, seals, checkpoints, postings, journal entries) it may only INSERT and
SELECT: UPDATE, DELETE and TRUNCATE are refused by privilege before any trigger
runs. Re-run ``manage.py db_app_role`` after every migrate (it is idempotent):
tables a migration adds get the defaults granted here, and the append-only
list is applied again.
"""

from django.db import connection, transaction
from psycopg import sql

APPEND_ONLY_TABLES = (
    "audit_auditrecord",
    "audit_auditseal",
    "audit_auditcheckpoint",
    "ledger_posting",
    "ledger_journalentry",
)


def app_role_sync(*, role: str, password: str | None = None) -> None:
    """Create ``role`` if missing (LOGIN, no other attribute) and grant it exactly the application's privileges.

    Run as the tables' owner. Raises ``ValueError`` off PostgreSQL.
    """
    if connection.vendor != "postgresql":
        raise ValueError("database roles exist only on PostgreSQL")
    name = sql.Identifier(role)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = connection.connection  # open now: identifiers are quoted by the driver
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS").format(name).as_string(raw))
        if password:
            cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(name, sql.Literal(password)).as_string(raw))
        statements = [
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(connection.settings_dict["NAME"]), name),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(name),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(name),
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(name),
            sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {}").format(name),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}").format(name),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}").format(name),
            *(
                sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(sql.Identifier(table), name)
                for table in APPEND_ONLY_TABLES
            ),
        ]
        for statement in statements:
            cursor.execute(statement.as_string(raw))
