"""``array_literal``: uuid, integer and boolean arrays as one text parameter, read back by PostgreSQL as the list."""

import uuid

import pytest
from django.db import connection

from ledgerx.fastsql import array_literal


def test_the_literal_spells_each_value_and_null():
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    assert array_literal([a, None, b]) == f"{{{a},NULL,{b}}}"
    assert array_literal([True, False]) == "{t,f}"
    assert array_literal([0, -5, 2**53 - 1]) == "{0,-5,9007199254740991}"
    assert array_literal([]) == "{}"


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([uuid.uuid4(), None, uuid.uuid4()], "uuid[]"),
        ([1, None, -(2**62)], "bigint[]"),
        ([True, None, False], "boolean[]"),
        ([], "uuid[]"),
    ],
)
def test_postgresql_reads_the_literal_back_as_the_list(values, kind):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{kind}", [array_literal(values)])
        (read,) = cursor.fetchone()
    assert read == values
