"""Run callables in threads, each with its own database connection."""

import threading

from django.db import connections


def run_parallel(calls, timeout: float = 60) -> list:
    """Start every call at once (barrier); return each call's result or raised exception."""
    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def runner(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as exc:  # collected for the test to assert on
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a worker hung (deadlock?)"
    return results


class RowLockHeld:
    """Hold ``SELECT ... FOR UPDATE`` on a ledger account from another connection until ``release()``.

    On PostgreSQL a movement is one statement (``ledgerx_movement_create``), so
    there is no Python point between its locks and its commit; tests that need
    a movement frozen while it holds locks make it wait on a row held here.
    """

    def __init__(self, account_id):
        self._account_id = account_id
        self._locked = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        from django.db import transaction

        from ledger.models import LedgerAccount

        try:
            with transaction.atomic():
                LedgerAccount.objects.select_for_update().get(pk=self._account_id)
                self._locked.set()
                self._release.wait(20)
        finally:
            connections.close_all()

    def __enter__(self):
        self._thread.start()
        assert self._locked.wait(10), "could not take the row lock"
        return self

    def release(self) -> None:
        self._release.set()
        self._thread.join(10)

    def __exit__(self, *exc) -> None:
        self.release()


def backend_waiting_on_lock(query_fragment: str, timeout: float = 10) -> int:
    """The pid of the backend whose running statement contains ``query_fragment`` and waits on a lock."""
    import time

    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s AND pid <> pg_backend_pid()",
                [f"%{query_fragment}%"],
            )
            row = cursor.fetchone()
        if row:
            return row[0]
        time.sleep(0.02)
    raise AssertionError(f"no backend running {query_fragment!r} is waiting on a lock")
