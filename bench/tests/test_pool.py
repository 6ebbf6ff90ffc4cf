"""classify_failure: what target 7 counts. Run: python -m pytest bench/tests -q"""

from bench.pool import classify_failure


class _PgError(Exception):
    def __init__(self, sqlstate):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


class _Wrapped(Exception):
    """Like django.db.OperationalError raised from a psycopg error."""


class _Business(Exception):
    code = "insufficient_funds"


def _wrapped(sqlstate):
    try:
        try:
            raise _PgError(sqlstate)
        except _PgError as inner:
            raise _Wrapped("wrapped") from inner
    except _Wrapped as outer:
        return outer


def test_deadlock_and_serialization_are_found_through_the_cause_chain():
    assert classify_failure(_wrapped("40P01")) == "deadlock"
    assert classify_failure(_wrapped("40001")) == "serialization_failure"
    assert classify_failure(_PgError("40P01")) == "deadlock"


def test_business_errors_keep_their_code_and_the_rest_is_other():
    assert classify_failure(_Business()) == "error:insufficient_funds"
    assert classify_failure(_wrapped("23505")) == "other:_Wrapped"
    assert classify_failure(ValueError("x")) == "other:ValueError"
