"""One-row INSERTs without the ORM's per-call query compilation.

``Model.objects.create`` compiles an INSERT (and instantiates a compiler and
its expressions) on every call; on the money write path that costs more
client CPU than the round trip itself (bench/results/cprofile-random.txt).
``row_insert`` sends the same statement with the values prepared by the
model's own fields (``get_db_prep_save``, exactly what ``create`` would send),
the column list built once per model. It does not run ``save()``, signals or
``pre_save`` hooks: use it only for models that have none (append-only rows
written by services).
"""

from functools import cache

from django.db import connection, models


@cache
def _insert_shape(model: type[models.Model], vendor: str) -> tuple[tuple, str]:
    fields = tuple(
        field for field in model._meta.concrete_fields if not (field.primary_key and isinstance(field, models.AutoField))
    )
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return fields, f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"


def row_insert(instance: models.Model) -> None:
    """INSERT ``instance`` (every concrete field but an auto-increment key) in one statement.

    The instance is marked saved; an auto-increment primary key is not read
    back. Raises whatever the database raises (IntegrityError on a unique or
    check constraint), like ``objects.create``.
    """
    fields, sql = _insert_shape(type(instance), connection.vendor)
    params = [field.get_db_prep_save(getattr(instance, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    instance._state.adding = False
    instance._state.db = connection.alias


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
        fields, sql = _insert_shape(type(instance), connection.vendor)
        statements.append(sql)
        params += [field.get_db_prep_save(getattr(instance, field.attname), connection) for field in fields]
    *first, last = statements
    ctes = ", ".join(f"w{number} AS ({sql})" for number, sql in enumerate(first))
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} {last}" if ctes else last, params)
    for instance in instances:
        instance._state.adding = False
        instance._state.db = connection.alias
