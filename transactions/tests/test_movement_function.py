"""The installed engine functions are the engine's texts, and each call matches its function's parameters."""

from pathlib import Path

import pytest
from django.db import connection

from transactions.engine.postgres import BATCH_FUNCTION, BATCH_PARAMETERS, FUNCTION, PARAMETERS

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ENGINE = Path(__file__).resolve().parents[1] / "engine" / "sql"
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

# (function, its one text, the glob of its frozen copies, its parameter table)
FUNCTIONS = [
    pytest.param(FUNCTION, ENGINE / "movements.sql", "*_movement_function.sql", PARAMETERS, id="movement"),
    pytest.param(BATCH_FUNCTION, ENGINE / "batches.sql", "*_batch_function.sql", BATCH_PARAMETERS, id="batch"),
]


def _installed(function: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_functiondef(p.oid), pg_get_function_identity_arguments(p.oid) FROM pg_proc p WHERE proname = %s",
            [function],
        )
        rows = cursor.fetchall()
    assert len(rows) == 1, f"exactly one {function}"
    return rows[0]


@pytest.mark.parametrize(("function", "text", "copies", "parameters"), FUNCTIONS)
def test_the_installed_function_is_the_engine_file(function, text, copies, parameters):
    definition, _arguments = _installed(function)
    source = text.read_text()
    body = source[source.index("$$") + 2 : source.rindex("$$")]
    installed = definition[definition.index("$function$") + len("$function$") : definition.rindex("$function$")]
    assert installed == body


@pytest.mark.parametrize(("function", "text", "copies", "parameters"), FUNCTIONS)
def test_the_latest_migration_copy_is_the_engine_file(function, text, copies, parameters):
    frozen = sorted(MIGRATIONS.glob(copies))
    assert frozen and frozen[-1].read_text() == text.read_text()


@pytest.mark.parametrize(("function", "text", "copies", "parameters"), FUNCTIONS)
def test_the_call_names_every_parameter_in_order(function, text, copies, parameters):
    _definition, arguments = _installed(function)
    assert arguments == ", ".join(f"{name} {kind}" for name, kind, _value in parameters).replace(
        "timestamptz", "timestamp with time zone"
    )
