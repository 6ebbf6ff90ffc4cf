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
