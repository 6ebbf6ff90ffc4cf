"""Closed-loop load with processes, each with its own database connection.

``run_closed_loop(make_op, concurrency, duration_s, warmup_s)`` forks
``concurrency`` workers. Each builds its operation with ``make_op(worker_index,
concurrency)`` (so it can pick its own accounts and open its own connection),
waits at a barrier, then calls the operation back to back: operations that
complete during the first ``warmup_s`` seconds are discarded, the ones that
complete in the next ``duration_s`` seconds are counted and timed. A failing
operation is classified (deadlock, serialization failure, business error code,
other) and counted, never retried: retries would hide exactly the failures the
benchmark must show.

The clock is ``time.monotonic()``, system-wide on Linux, so every worker's
window starts at the same barrier release.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.stats import percentile, result_line

_ctx = mp.get_context("fork")


@dataclass
class LoadResult:
    concurrency: int
    duration_s: float
    completed: int
    latencies_ms: list[float]
    failures: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.completed / self.duration_s

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50) if self.latencies_ms else 0.0

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99) if self.latencies_ms else 0.0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def summary(self, system: str, scenario: str, *, transfers_per_op: int = 1) -> dict:
        """The record a run keeps (results/latest.json), with its printed result line.

        ``transfers_per_op`` > 1 (a batch): the rate is in transfers per second, so a
        batch point compares with single transfers; its latencies stay per batch and
        ``batches_per_s`` keeps the operations' own rate.
        """
        rate = self.rate * transfers_per_op
        out = {
            "system": system,
            "scenario": scenario,
            "concurrency": self.concurrency,
            "rate": rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "completed": self.completed,
            "failures": dict(self.failures),
            "line": result_line(system, scenario, self.concurrency, rate, self.p50_ms, self.p99_ms),
        }
        if transfers_per_op > 1:
            out["batches_per_s"] = self.rate
            out["transfers_per_op"] = transfers_per_op
        return out


def classify_failure(exc: BaseException) -> str:
    """A stable label for a failed operation.

    Deadlocks (SQLSTATE 40P01) and serialization failures (40001) are what target
    (7) forbids; LedgerX business errors keep their contract code; anything else
    is ``other:<ExceptionType>``.
    """
    seen = exc
    for _ in range(5):  # Django wraps psycopg errors; walk the cause chain
        sqlstate = getattr(seen, "sqlstate", None) or getattr(getattr(seen, "diag", None), "sqlstate", None)
        if sqlstate == "40P01":
            return "deadlock"
        if sqlstate == "40001":
            return "serialization_failure"
        seen = seen.__cause__ or seen.__context__
        if seen is None:
            break
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return f"error:{code}"
    return f"other:{type(exc).__name__}"


def _worker(make_op, index, concurrency, duration_s, warmup_s, barrier, results):
    latencies: list[float] = []
    failures: Counter = Counter()
    completed = 0
    first_error = None
    try:
        op = make_op(index, concurrency)
        barrier.wait()
        started = time.monotonic()
        measure_from = started + warmup_s
        stop_at = measure_from + duration_s
        clock = time.monotonic
        while True:
            t0 = clock()
            if t0 >= stop_at:
                break
            try:
                op()
            except Exception as exc:  # noqa: BLE001 - every failure is counted, by kind
                t1 = clock()
                if measure_from <= t1 <= stop_at:
                    failures[classify_failure(exc)] += 1
                    if first_error is None:
                        first_error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                        if getattr(exc, "fields", None):
                            first_error += f" fields={exc.fields}"
                continue
            t1 = clock()
            if measure_from <= t1 <= stop_at:
                completed += 1
                latencies.append((t1 - t0) * 1000.0)
    except Exception:  # noqa: BLE001 - a worker that cannot start reports why
        try:
            barrier.abort()
        except Exception:  # noqa: BLE001
            pass
        failures["worker_crashed"] += 1
        first_error = traceback.format_exc()
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001
            pass
    results.put((completed, latencies, dict(failures), first_error))


def run_closed_loop(
    make_op: Callable[[int, int], Callable[[], object]],
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    *,
    log: Callable[[str], None] = print,
    window: Callable[[str], None] | None = None,
) -> LoadResult:
    """Run ``concurrency`` closed-loop workers; see the module docstring.

    ``window``, if given, is called with ``"start"`` and ``"end"`` (from timer threads of
    this process) when the measured window opens and closes, e.g. to read CPU counters.
    """
    try:  # connections must never cross a fork
        from django.db import connections

        connections.close_all()
    except Exception:  # noqa: BLE001 - Django may not be configured (pgbench-only use)
        pass
    barrier = _ctx.Barrier(concurrency + 1)
    results = _ctx.Queue()
    workers = [
        _ctx.Process(target=_worker, args=(make_op, i, concurrency, duration_s, warmup_s, barrier, results))
        for i in range(concurrency)
    ]
    for worker in workers:
        worker.start()
    timers = []
    try:
        barrier.wait(timeout=300)
        if window is not None:
            import threading

            timers = [threading.Timer(warmup_s, window, ["start"]), threading.Timer(warmup_s + duration_s, window, ["end"])]
            for timer in timers:
                timer.start()
    except Exception:  # noqa: BLE001 - a worker failed during setup; its report says why
        pass
    collected = []
    deadline = time.monotonic() + warmup_s + duration_s + 120
    while len(collected) < concurrency:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            collected.append(results.get(timeout=remaining))
        except Exception:  # noqa: BLE001 - queue.Empty: a worker hung
            break
    for timer in timers:
        timer.join(timeout=10)
    for worker in workers:
        worker.join(timeout=10)
        if worker.is_alive():
            worker.kill()
    result = LoadResult(concurrency=concurrency, duration_s=duration_s, completed=0, latencies_ms=[])
    errors_shown = 0
    for completed, latencies, failures, first_error in collected:
        result.completed += completed
        result.latencies_ms.extend(latencies)
        result.failures.update(failures)
        if first_error and errors_shown < 2:
            log(f"  worker error: {first_error}")
            errors_shown += 1
    missing = concurrency - len(collected)
    if missing:
        result.failures["worker_lost"] += missing
    return result
