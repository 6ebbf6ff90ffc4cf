"""``python -m bench profile``: where one operation's time goes.

For each service scenario, in one process on the benchmark's books:

* every SQL statement per operation (Django's query log, client-side timing:
  round trip + server time), grouped by statement shape, with count per
  operation and ms per operation -- PostgreSQL here has no pg_stat_statements
  (it is not in shared_preload_libraries and the server is shared), so this is
  the statement-level view;
* a pyinstrument profile of the ``random`` scenario (results/profile-random.txt);
* EXPLAIN (ANALYZE, BUFFERS) of the heaviest statements is left to
  ``python -m bench explain`` on demand.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
N_OPS = 100  # x ~40 statements stays under Django's 9000-entry query log

_NORMALIZE = [
    (re.compile(r"'[^']*'"), "?"),
    (re.compile(r"\b\d+(\.\d+)?\b"), "N"),
    (re.compile(r"\(\s*(\?|N|%s)(\s*,\s*(\?|N|%s))*\s*\)"), "(...)"),
    (re.compile(r"\s+"), " "),
]


def _shape(sql: str) -> str:
    for pattern, repl in _NORMALIZE:
        sql = pattern.sub(repl, sql)
    return sql.strip()[:160]


def statements_per_op(name: str, n_ops: int = N_OPS) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.scenarios import SCENARIO_FACTORIES

    op = SCENARIO_FACTORIES[name](0, 1)
    for _ in range(20):  # warm caches and connections
        op()
    shapes: dict = defaultdict(lambda: [0, 0.0])
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        for _ in range(n_ops):
            op()
        wall = time.perf_counter() - started
    for q in ctx.captured_queries:
        entry = shapes[_shape(q["sql"])]
        entry[0] += 1
        entry[1] += float(q["time"])
    sql_s = sum(t for _, t in shapes.values())
    return {
        "scenario": name,
        "ops": n_ops,
        "wall_ms_per_op": wall * 1000 / n_ops,
        "sql_ms_per_op": sql_s * 1000 / n_ops,
        "statements_per_op": len(ctx.captured_queries) / n_ops,
        "by_shape": sorted(
            ({"sql": s, "per_op": c / n_ops, "ms_per_op": t * 1000 / n_ops} for s, (c, t) in shapes.items()),
            key=lambda row: -row["ms_per_op"],
        ),
    }


def _proc_cpu_s(pid: int) -> float:
    """user+system CPU seconds of a process, from /proc (the PostgreSQL backend runs on this machine)."""
    import os

    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def cpu_split(name: str, n_ops: int = 300) -> dict:
    """CPU per operation: this Python process vs its PostgreSQL backend, and wall time.

    On a 2-core machine shared by client and server, CPU per operation is what
    bounds throughput: 2 cores / (client + server CPU per op) is the ceiling.
    """
    from django.db import connection

    from bench.scenarios import SCENARIO_FACTORIES

    op = SCENARIO_FACTORIES[name](0, 1)
    for _ in range(20):
        op()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    server0, client0, wall0 = _proc_cpu_s(backend), time.process_time(), time.perf_counter()
    for _ in range(n_ops):
        op()
    server1, client1, wall1 = _proc_cpu_s(backend), time.process_time(), time.perf_counter()
    client_ms = (client1 - client0) * 1000 / n_ops
    server_ms = (server1 - server0) * 1000 / n_ops
    return {
        "scenario": name,
        "ops": n_ops,
        "wall_ms": (wall1 - wall0) * 1000 / n_ops,
        "client_cpu_ms": client_ms,
        "server_cpu_ms": server_ms,
        "cpu_bound_per_s_2_cores": 2000 / (client_ms + server_ms) if client_ms + server_ms else None,
    }


def pyinstrument_random(n_ops: int = 300) -> str:
    from pyinstrument import Profiler

    from bench.scenarios import SCENARIO_FACTORIES

    op = SCENARIO_FACTORIES["random"](0, 1)
    for _ in range(20):
        op()
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(n_ops):
        op()
    profiler.stop()
    return profiler.output_text(unicode=False, color=False, show_all=False)


def run_profile(*, log=print) -> str:
    from bench.scenarios import SERVICE_SCENARIOS

    from django.conf import settings

    settings.DEBUG = False  # CaptureQueriesContext forces the query log on by itself
    lines = [
        "# CPU per operation (one process, warm; client = this Python process, server = its PostgreSQL backend)",
        "",
        "| scenario | wall ms/op | client CPU ms/op | server CPU ms/op | CPU-bound ceiling on 2 cores (ops/s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in SERVICE_SCENARIOS:
        r = cpu_split(name)
        lines.append(
            f"| {name} | {r['wall_ms']:.2f} | {r['client_cpu_ms']:.2f} | {r['server_cpu_ms']:.2f} | "
            f"{r['cpu_bound_per_s_2_cores']:.0f} |"
        )
        log(f"  {name}: client {r['client_cpu_ms']:.2f} ms CPU/op, server {r['server_cpu_ms']:.2f} ms CPU/op")
    lines += ["", "# Statements per operation (client-side timing, one process, warm)", ""]
    for name in SERVICE_SCENARIOS:
        # Each scenario patches module attributes (PIN, audit) in this process;
        # random_noaudit goes last so the others keep their audit.
        r = statements_per_op(name)
        lines.append(
            f"## {name}: {r['statements_per_op']:.1f} statements/op, {r['wall_ms_per_op']:.2f} ms/op wall, "
            f"{r['sql_ms_per_op']:.2f} ms/op in SQL round trips"
        )
        lines.append("")
        lines.append("| per op | ms/op | statement |")
        lines.append("| ---: | ---: | --- |")
        for row in r["by_shape"]:
            sql = row["sql"].replace("|", "\\|")
            lines.append(f"| {row['per_op']:.2f} | {row['ms_per_op']:.3f} | `{sql}` |")
        lines.append("")
        log(f"  {name}: {r['statements_per_op']:.1f} statements/op, {r['wall_ms_per_op']:.2f} ms/op")
    text = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "statements.md").write_text(text)
    return text
