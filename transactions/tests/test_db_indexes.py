"""No foreign key carries an index of its own where a wider one already serves it.

Django gives every ForeignKey a single-column index unless ``db_index=False``.
On the money write path seven of them were prefixes or duplicates of the
indexes below and cost ~9% of PostgreSQL CPU per transfer (issue #5). These
tests read the migrated schema, so a future field change that silently brings
one back (dropping ``db_index=False``, turning a ForeignKey into a
OneToOneField...) fails here, and so does losing a covering index.
"""

import re

import pytest
from django.db import connection, transaction

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# (table, column): the one single-column index allowed on it, or None.
FK_COLUMNS = {
    ("ledger_posting", "account_id"): None,
    ("ledger_ledgeraccount", "owner_id"): None,
    ("transactions_transaction", "source_account_id"): None,
    ("transactions_transaction", "destination_account_id"): None,
    ("transactions_idempotencyrecord", "user_id"): None,
    ("transactions_idempotencyrecord", "transaction_id"): "idempotency_transaction_unique",
    ("audit_auditrecord", "actor_id"): None,
}

# The indexes that serve every lookup by those columns: (table, name) -> (unique, key columns).
COVERING = {
    ("ledger_posting", "ledger_posting_account_idx"): (False, ["account_id", "id"]),
    ("ledger_ledgeraccount", "ledger_account_owner_idx"): (False, ["owner_id", "created_at"]),
    ("transactions_transaction", "txn_source_keyset_idx"): (False, ["source_account_id", "created_at", "id"]),
    ("transactions_transaction", "txn_destination_keyset_idx"): (
        False,
        ["destination_account_id", "created_at", "id"],
    ),
    ("transactions_idempotencyrecord", "idempotency_user_endpoint_key_unique"): (True, ["user_id", "endpoint", "key"]),
    ("transactions_idempotencyrecord", "idempotency_transaction_unique"): (True, ["transaction_id"]),
    ("audit_auditrecord", "audit_actor_idx"): (False, ["actor_id", "at"]),
}

_INDEXDEF = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON \S+ USING \w+ \((?P<keys>.*?)\)(?: INCLUDE \(.*\))?(?: WHERE .*)?$")


def _indexes() -> dict:
    """{(table, index name): (unique, key column names)} from pg_indexes, for the tables above."""
    tables = sorted({table for table, _column in FK_COLUMNS})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = ANY(%s)",
            [tables],
        )
        rows = cursor.fetchall()
    found = {}
    for table, name, definition in rows:
        match = _INDEXDEF.match(definition)
        assert match, f"unexpected index definition: {definition}"
        # "account_id", "id DESC", "number varchar_pattern_ops": the column is the first word.
        columns = [key.strip().split(" ")[0].strip('"') for key in match["keys"].split(",")]
        found[(table, name)] = (bool(match.group(1)), columns)
    return found


def _redundant_fk_indexes() -> list[str]:
    return sorted(
        name
        for (table, name), (_unique, columns) in _indexes().items()
        for (fk_table, column), allowed in FK_COLUMNS.items()
        if table == fk_table and columns == [column] and name != allowed
    )


def test_no_single_column_index_on_covered_foreign_keys():
    assert _redundant_fk_indexes() == []


def test_covering_indexes_exist():
    indexes = _indexes()
    assert {key: indexes.get(key) for key in COVERING} == COVERING


def test_a_readded_foreign_key_index_is_caught():
    """The check above is not vacuous: Django's own FK index shape is flagged, on every column."""
    names = [f"test_readded_fk_{n}" for n in range(len(FK_COLUMNS))]
    with transaction.atomic():  # a savepoint: the indexes are gone after the test
        with connection.cursor() as cursor:
            for name, (table, column) in zip(names, FK_COLUMNS):
                cursor.execute(f'CREATE INDEX "{name}" ON "{table}" ("{column}")')
        assert _redundant_fk_indexes() == names
        transaction.set_rollback(True)
    assert _redundant_fk_indexes() == []
