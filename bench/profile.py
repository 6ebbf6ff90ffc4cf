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
N_OPS = 200

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
    """Statements per operation by shape, timed with perf_counter around each execute
    (an execute_wrapper) and around COMMIT; Django's own query log rounds to 1 ms."""
    from django.db import connection

    from bench.scenarios import SCENARIO_FACTORIES

    op = SCENARIO_FACTORIES[name](0, 1)
    for _ in range(20):  # warm caches and connections
        op()
    shapes: dict = defaultdict(lambda: [0, 0.0])
    clock = time.perf_counter

    def timed_execute(execute, sql, params, many, context):
        t0 = clock()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = shapes[_shape(sql)]
            entry[0] += 1
            entry[1] += clock() - t0

    plain_commit = connection._commit

    def timed_commit(*args, **kwargs):
        t0 = clock()
        try:
            return plain_commit(*args, **kwargs)
        finally:
            shapes["COMMIT"][0] += 1
            shapes["COMMIT"][1] += clock() - t0

    connection._commit = timed_commit  # this thread's connection only (the audit sealer has its own)
    try:
        with connection.execute_wrapper(timed_execute):
            started = clock()
            for _ in range(n_ops):
                op()
            wall = clock() - started
    finally:
        del connection._commit
    sql_s = sum(t for _, t in shapes.values())
    count = sum(c for c, _ in shapes.values())
    return {
        "scenario": name,
        "ops": n_ops,
        "wall_ms_per_op": wall * 1000 / n_ops,
        "sql_ms_per_op": sql_s * 1000 / n_ops,
        "statements_per_op": count / n_ops,
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


_SERVER_PIDS_SQL = """
SELECT pid FROM pg_stat_activity
 WHERE datname = ANY(%s) AND pid <> pg_backend_pid()
    OR backend_type IN ('walwriter', 'checkpointer', 'background writer')
"""


def _postgres_cpu_by_pid(conn, databases: list[str]) -> dict[int, float]:
    found = {}
    for (pid,) in conn.execute(_SERVER_PIDS_SQL, [databases]).fetchall():
        try:
            found[pid] = _proc_cpu_s(pid)
        except OSError:  # exited meanwhile
            continue
    return found


class PostgresCpuMeter:
    """CPU seconds used by the PostgreSQL backends connected to ``databases`` plus
    the WAL writer, checkpointer and background writer, between start() and
    stop(). Sampled every 0.1 s, so a backend that exits during the window (a
    pgbench client's) counts up to its last sample. The server-wide processes
    also work for other databases: run it on a quiet machine.
    """

    def __init__(self, databases: list[str], interval: float = 0.1):
        import threading

        import psycopg

        from bench import env

        self.databases = databases
        self.conn = psycopg.connect(
            host=env.PG_HOST, port=env.PG_PORT, user=env.PG_USER, dbname="postgres", autocommit=True
        )
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def _sample(self) -> None:
        initial = not self.last  # pids already there count from now, later ones from 0
        for pid, cpu in _postgres_cpu_by_pid(self.conn, self.databases).items():
            self.first.setdefault(pid, cpu if initial else 0.0)
            self.last[pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> "PostgresCpuMeter":
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.conn.close()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def _quiesce() -> None:
    """Start a CPU window from the same state: no audit backlog, no checkpoint pending.

    Records another scenario left unsealed (``random_nosealer``) would otherwise
    be sealed, and counted, in the next scenario's window, and a checkpoint
    triggered by the previous one would land in it.
    """
    from django.db import connection

    from audit.services.sealing import audit_seal_pending

    audit_seal_pending(wait=True)
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def cpu_split(name: str, n_ops: int = 500) -> dict:
    """CPU per operation: this Python process (all its threads, e.g. the audit sealer)
    vs the PostgreSQL server (all its processes), and wall time.

    On a 2-core machine shared by client and server, CPU per operation is what
    bounds throughput: 2 cores / (client + server CPU per op) is the ceiling.
    """
    from bench.scenarios import SCENARIO_FACTORIES

    op = SCENARIO_FACTORIES[name](0, 1)
    for _ in range(20):
        op()
    _quiesce()
    from bench import env

    meter = PostgresCpuMeter([env.BENCH_DB]).start()
    client0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n_ops):
        op()
    client1, wall1 = time.process_time(), time.perf_counter()
    client_ms = (client1 - client0) * 1000 / n_ops
    server_ms = meter.stop() * 1000 / n_ops
    return {
        "scenario": name,
        "ops": n_ops,
        "wall_ms": (wall1 - wall0) * 1000 / n_ops,
        "client_cpu_ms": client_ms,
        "server_cpu_ms": server_ms,
        "cpu_bound_per_s_2_cores": 2000 / (client_ms + server_ms) if client_ms + server_ms else None,
    }


def _median_split(rows: list[dict]) -> dict:
    """The round with the median total CPU (its figures stay consistent with each other)."""
    ranked = sorted(rows, key=lambda r: r["client_cpu_ms"] + r["server_cpu_ms"])
    return {**ranked[len(ranked) // 2], "rounds": [round(r["client_cpu_ms"] + r["server_cpu_ms"], 3) for r in rows]}


# What audit costs is a difference between these three, so they are measured in
# interleaved rounds (a drift of the shared machine then hits all three alike).
AUDIT_TRIO = ("random", "random_nosealer", "random_noaudit")
AUDIT_ROUNDS = 3


def pgbench_cpu_split(seconds: int = 5) -> dict:
    """The same CPU split for one pgbench TPC-B client (c=1), for comparison."""
    import re
    import resource
    import subprocess

    from bench import pgbench

    if not pgbench.pgbench_initialized():
        pgbench.pgbench_init()
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    meter = PostgresCpuMeter([pgbench.PGBENCH_DB]).start()
    wall0 = time.perf_counter()
    out = subprocess.run(
        ["pgbench", *pgbench._conn_args(), "-c", "1", "-j", "1", "-T", str(seconds), "-n", pgbench.PGBENCH_DB],
        capture_output=True, text=True, check=True,
    ).stdout
    wall1 = time.perf_counter()
    server_s = meter.stop()
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    client_s = (after_children.ru_utime + after_children.ru_stime) - (before_children.ru_utime + before_children.ru_stime)
    client_ms, server_ms = client_s * 1000 / n, server_s * 1000 / n
    return {
        "scenario": "pgbench tpcb",
        "ops": n,
        "wall_ms": (wall1 - wall0) * 1000 / n,
        "client_cpu_ms": client_ms,
        "server_cpu_ms": server_ms,
        "cpu_bound_per_s_2_cores": 2000 / (client_ms + server_ms),
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


def cprofile_cpu(name: str = "random", n_ops: int = 300) -> str:
    """CPU-time (time.process_time) cProfile of ``n_ops`` operations: where the client's CPU goes."""
    import cProfile
    import io
    import pstats

    from bench.scenarios import SCENARIO_FACTORIES

    op = SCENARIO_FACTORIES[name](0, 1)
    for _ in range(20):
        op()
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(n_ops):
        op()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = stats.total_tt
    out.write(f"{name}: {total * 1000 / n_ops:.2f} ms CPU per operation (cProfile adds overhead; read the shares)\n")
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    return out.getvalue()


def http_profile(n: int = 200) -> str:
    """CPU and statements per request for GET me, GET accounts/{id} (balance), in-process
    (Django's test client through the whole middleware and DRF stack, no gunicorn)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework_simplejwt.tokens import AccessToken

    from bench.books import books_load

    books = books_load()
    accounts = books.accounts[:n]
    tokens = {a.owner_id: str(AccessToken.for_user(books.owner(a))) for a in accounts}
    client = Client(HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="127.0.0.1")
    rows = ["| request | CPU ms/request (whole process) | statements/request |", "| --- | ---: | ---: |"]
    for label, path in (("GET /api/v1/me", lambda a: "/api/v1/me"), ("GET /api/v1/accounts/{id}", lambda a: f"/api/v1/accounts/{a.pk}")):
        for a in accounts[:20]:
            warm = client.get(path(a), HTTP_AUTHORIZATION=f"Bearer {tokens[a.owner_id]}")
            assert warm.status_code == 200, warm.content
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as ctx:
            c0 = time.process_time()
            for a in accounts:
                response = client.get(path(a), HTTP_AUTHORIZATION=f"Bearer {tokens[a.owner_id]}")
                assert response.status_code == 200, response.content
            cpu = time.process_time() - c0
        rows.append(f"| {label} | {cpu * 1000 / len(accounts):.2f} | {len(ctx.captured_queries) / len(accounts):.1f} |")
    return "\n".join(rows)


def run_profile(*, log=print) -> str:
    from bench.scenarios import SERVICE_SCENARIOS

    lines = [
        "# CPU per operation (one process, warm; client = this Python process with its threads,"
        " server = its PostgreSQL backends + WAL writer, checkpointer, bgwriter)",
        "",
        "| scenario | wall ms/op | client CPU ms/op | server CPU ms/op | CPU-bound ceiling on 2 cores (ops/s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    _quiesce()
    cpu_rows = {"pgbench": pgbench_cpu_split()}
    for name in SERVICE_SCENARIOS:
        if name not in AUDIT_TRIO:
            cpu_rows[name] = cpu_split(name)
    trio: dict[str, list[dict]] = {name: [] for name in AUDIT_TRIO}
    for _ in range(AUDIT_ROUNDS):
        for name in AUDIT_TRIO:
            trio[name].append(cpu_split(name))
    cpu_rows.update({name: _median_split(rows) for name, rows in trio.items()})
    for name in ("pgbench", *SERVICE_SCENARIOS, "random_nosealer"):
        r = cpu_rows[name]
        rounds = f" (median of {len(r['rounds'])} rounds, totals {r['rounds']})" if "rounds" in r else ""
        lines.append(
            f"| {name} | {r['wall_ms']:.2f} | {r['client_cpu_ms']:.2f} | {r['server_cpu_ms']:.2f} | "
            f"{r['cpu_bound_per_s_2_cores']:.0f} |"
        )
        log(f"  {name}: client {r['client_cpu_ms']:.2f} ms CPU/op, server {r['server_cpu_ms']:.2f} ms CPU/op{rounds}")
    lines += [
        "",
        f"`random`, `random_nosealer` and `random_noaudit`: the median of {AUDIT_ROUNDS} interleaved rounds "
        "(total CPU ms/op per round: "
        + "; ".join(f"{name} {cpu_rows[name]['rounds']}" for name in AUDIT_TRIO)
        + "). Each window starts with no audit backlog and after a CHECKPOINT.",
    ]
    lines += [
        "",
        "# Statements per operation (one process, warm; this thread's connection: the audit sealer thread's"
        " statements are not listed, its CPU is in the table above; ms = client-side round trip incl. server time)",
        "",
    ]
    for name in tuple(SERVICE_SCENARIOS) + ("random_nosealer",):
        # Each scenario sets the module attributes it patches (PIN, audit, sealer) itself.
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
    lines += ["", "# HTTP requests in-process (Django test client, whole middleware + DRF stack)", "", http_profile(), ""]
    text = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    import json
    from datetime import datetime, timezone

    (RESULTS / "profile.json").write_text(
        json.dumps({"at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_rows}, indent=2)
    )
    (RESULTS / "statements.md").write_text(text)
    return text
