"""Statements on the money path without the ORM's per-call overhead.

Why: a money request is a handful of short statements, so the client CPU
spent building them weighs as much as the round trips.

``prepared_cursor``: the statements every money request sends with the same
text (the movement function's call, the idempotency probe, the PIN check's
read of the user) bound server-side and prepared once per connection.

``array_literal``: uuid, integer and boolean arrays as one text parameter.

INSERTs without the ORM's per-call query compilation: ``Model.objects.create``
compiles an INSERT (and instantiates a compiler and its expressions) on every
call. These helpers send the same statement with the values prepared by the
model's own fields (``get_db_prep_save``, exactly what ``create`` would send),
the column list built once per model. They do not run ``save()``, signals or
``pre_save`` hooks: use them only for models that have none (append-only rows
written by services), and an auto-increment primary key is not read back.
"""

from contextlib import contextmanager
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.utils import CursorDebugWrapper


def array_literal(values) -> str:
    """A PostgreSQL array literal, one text parameter, for values that need no quoting.

    For uuid, integer and boolean arrays (None is NULL); the statement casts it
    (``%s::uuid[]``). psycopg's dumper for a Python list looks up a dumper for
    every element on every call, which on the money path costs more than the
    values themselves. Never for text: it does not quote.
    """
    return "{" + ",".join("NULL" if v is None else ("t" if v else "f") if isinstance(v, bool) else str(v) for v in values) + "}"


def prepared_cursor():
    """A cursor whose statements are bound server-side and prepared on first use (PostgreSQL only).

    Django's own cursors bind client-side (the values are quoted into the SQL
    text, so PostgreSQL parses and plans every statement anew). A statement
    that runs on every money request with the same text is worth preparing
    once: the server then skips its parse and plan on every later call. Only
    cursors made here prepare: the connection's
    ``prepare_threshold`` (``ledgerx/settings.py``, ``LEDGERX_DB_PREPARE``)
    does not affect client-side cursors, and ``None`` there turns preparing
    off (e.g. behind a transaction-pooling PgBouncer). Write the statement
    with explicit casts (``%s::bigint``): the values travel as parameters,
    typed by psycopg, not as SQL literals.

    The cursor is wrapped like Django's (error translation, execute wrappers,
    the debug query log), so callers use it like ``connection.cursor()``:
    ``with prepared_cursor() as cursor``.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    # The connection itself, not the ``connection`` proxy: each attribute read
    # through the proxy resolves the alias again.
    conn = connections[DEFAULT_DB_ALIAS]
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    with conn.wrap_database_errors:
        raw = ServerBindingCursor(conn.connection)
    return _PreparedDebugWrapper(raw, conn) if conn.queries_logged else conn.make_cursor(raw)


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Django's query log (DEBUG, ``CaptureQueriesContext``) for ``prepared_cursor``.

    psycopg keeps no text of a statement it ran as a prepared statement, where
    Django's log would look for it; log the statement as written instead.
    """

    @contextmanager
    def debug_sql(self, sql=None, params=None, use_last_executed_query=False, many=False):
        with super().debug_sql(sql, params, use_last_executed_query=False, many=many):
            yield


@cache
def _insert_shape(model: type[models.Model], vendor: str, sql_values: tuple = ()) -> tuple[tuple, str, str]:
    expressions = dict(sql_values)
    columns_of = tuple(
        field for field in model._meta.concrete_fields if not (field.primary_key and isinstance(field, models.AutoField))
    )
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in columns_of)
    row = "(" + ", ".join(expressions.get(field.attname, "%s") for field in columns_of) + ")"
    # The parameters' fields: every field sent as a value, including those whose expression wraps it (``%s``).
    fields = tuple(field for field in columns_of if "%s" in expressions.get(field.attname, "%s"))
    return fields, f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ", row


def insert_statement(*instances: models.Model, sql_values: dict[str, str] | None = None) -> tuple[str, list]:
    """(sql, params) of one multi-row INSERT of ``instances`` (all of one model).

    ``sql_values``: {field name: SQL expression} for columns the database
    computes in the statement itself (e.g. the writing transaction's id)
    instead of a value sent as a parameter; an expression containing ``%s``
    wraps the field's own value, sent as the parameter in that place.
    """
    # The connection itself, not the ``django.db.connection`` proxy: each field
    # looks up ``connection.ops``/``features`` several times, and every lookup
    # through the proxy resolves the alias again (measurable per row).
    conn = connections[DEFAULT_DB_ALIAS]
    shape = tuple(sorted(sql_values.items())) if sql_values else ()
    fields, head, row = _insert_shape(type(instances[0]), conn.vendor, shape)
    params = [field.get_db_prep_save(getattr(instance, field.attname), conn) for instance in instances for field in fields]
    return head + ", ".join([row] * len(instances)), params


def _mark_saved(instances) -> None:
    for instance in instances:
        instance._state.adding = False
        instance._state.db = connection.alias


def row_insert(instance: models.Model) -> None:
    """INSERT ``instance`` (every concrete field but an auto-increment key) in one statement.

    Raises whatever the database raises (IntegrityError on a unique or check
    constraint), like ``objects.create``.
    """
    sql, params = insert_statement(instance)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    _mark_saved([instance])


def rows_insert(*instances: models.Model) -> None:
    """``row_insert`` for several rows; on PostgreSQL in ONE statement (data-modifying CTEs).

    The rows go in the order given (a later row may reference an earlier one;
    foreign keys are checked at commit). One failing constraint fails the
    whole statement, as the separate INSERTs would fail the transaction.
    """
    if connection.vendor != "postgresql":
        for instance in instances:
            row_insert(instance)
        return
    statements, params = [], []
    for instance in instances:
        sql, values = insert_statement(instance)
        statements.append(sql)
        params += values
    *first, last = statements
    ctes = ", ".join(f"w{number} AS ({sql})" for number, sql in enumerate(first))
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} {last}" if ctes else last, params)
    _mark_saved(instances)
