"""INSERTs without the ORM's per-call query compilation.

``Model.objects.create`` compiles an INSERT (and instantiates a compiler and
its expressions) on every call; on the money write path that costs more
client CPU than the round trip itself (bench/results/cprofile-random.txt).
These helpers send the same statement with the values prepared by the
model's own fields (``get_db_prep_save``, exactly what ``create`` would send),
the column list built once per model. They do not run ``save()``, signals or
``pre_save`` hooks: use them only for models that have none (append-only rows
written by services), and an auto-increment primary key is not read back.
"""

from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections, models


@cache
def _insert_shape(model: type[models.Model], vendor: str) -> tuple[tuple, str, str]:
    fields = tuple(
        field for field in model._meta.concrete_fields if not (field.primary_key and isinstance(field, models.AutoField))
    )
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return fields, f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ", row


def insert_statement(*instances: models.Model) -> tuple[str, list]:
    """(sql, params) of one multi-row INSERT of ``instances`` (all of one model)."""
    # The connection itself, not the ``django.db.connection`` proxy: each field
    # looks up ``connection.ops``/``features`` several times, and every lookup
    # through the proxy resolves the alias again (measurable per row).
    conn = connections[DEFAULT_DB_ALIAS]
    fields, head, row = _insert_shape(type(instances[0]), conn.vendor)
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
