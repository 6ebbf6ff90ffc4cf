"""The installed movement function is the engine's one text, and the call matches its parameters."""

from pathlib import Path

import pytest
from django.db import connection

from transactions.engine.postgres import FUNCTION, PARAMETERS

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ENGINE_SQL = Path(__file__).resolve().parents[1] / "engine" / "sql" / "movements.sql"


def _installed() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_functiondef(p.oid), pg_get_function_identity_arguments(p.oid) FROM pg_proc p WHERE proname = %s",
            [FUNCTION],
        )
        rows = cursor.fetchall()
    assert len(rows) == 1, "exactly one ledgerx_movement_create"
    return rows[0]


def test_the_installed_function_is_the_engine_file():
    definition, _arguments = _installed()
    text = ENGINE_SQL.read_text()
    body = text[text.index("$$") + 2 : text.rindex("$$")]
    installed = definition[definition.index("$function$") + len("$function$") : definition.rindex("$function$")]
    assert installed == body


def test_the_latest_migration_copy_is_the_engine_file():
    copies = sorted((Path(__file__).resolve().parents[1] / "migrations").glob("*_movement_function.sql"))
    assert copies[-1].read_text() == ENGINE_SQL.read_text()


def test_the_call_names_every_parameter_in_order():
    _definition, arguments = _installed()
    assert arguments == ", ".join(f"{name} {kind}" for name, kind, _value in PARAMETERS).replace(
        "timestamptz", "timestamp with time zone"
    )
