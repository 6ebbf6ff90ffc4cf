"""``python -m bench cluster``: the topology of ``scripts/cluster``, measured A against B in one run.

Two comparisons, each an A and a B point taking turns in every round (``round_points``),
because the shared machine drifts by +-30% between minutes and two points taken seconds
apart drift together:

* ``http_statement_replica`` against ``http_statement_primary``: ``GET accounts/{id}/entries``
  (page 1, ``page_size=20``; every account has ``STATEMENT_HISTORY`` deposits, so the page is
  full) against a server whose primary is reached through PgBouncer and whose statement reads
  may use the streaming replica (``DATABASE_REPLICA_URLS``), and against the same server
  without replicas. Where the reads ran is counted twice over each point (warm-up included):
  by the app itself (``ledgerx_replica_reads_total`` by target, read from ``/metrics`` before
  and after) and by the databases (``pg_stat_database.xact_commit`` of the bench database on
  the primary and on the replica, read once the backends have flushed their counters).
* ``http_transfer_warm_pgbouncer`` against ``http_transfer_warm_direct``: the warm transfer
  of ``bench.http`` against a server reaching the primary through PgBouncer in transaction
  pooling (``LEDGERX_DB_TRANSACTION_POOLING=1``, as ``scripts/cluster`` runs its app servers)
  and against one connected to the primary directly. Neither has replicas, so the pair
  differs in the pooler alone (and in what pooling mode switches: no server-side prepared
  statements, the in-flight guard as a cache marker).

The app servers are the benchmark's own gunicorns (``bench.http.Server``, the repo's
gunicorn.conf.py, one of each kind), so the two servers of a pair differ in their database
settings only; the PostgreSQL primary, its replica and PgBouncer are the ones
``scripts/cluster up`` started (it must be up: this module starts and stops none of them).
The books are made afresh in ``BENCH_DB`` on the cluster's primary (bench/run points
``BENCH_PGPORT`` at it). Results: stdout lines as every scenario prints them,
``results/cluster.json`` and a section of RESULTS.md (``cluster_markdown``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.stats import paired_ratio, result_line

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
PRIMARY_PORT = os.environ.get("LEDGERX_CLUSTER_PRIMARY_PORT", "5441")
REPLICA_PORT = os.environ.get("LEDGERX_CLUSTER_REPLICA_PORT", "5442")
BOUNCER_PORT = os.environ.get("LEDGERX_CLUSTER_BOUNCER_PORT", "6441")
CONCURRENCIES = (4, 16)
# Deposits per account before the rounds: two full statement pages (the transfers of the
# rounds add more, alike for both statement points of a round).
STATEMENT_HISTORY = 40
# The bench servers' /metrics token (LEDGERX_METRICS_TOKEN): the replica-read counter comes from there.
METRICS_TOKEN = "bench-only-metrics-token-0123456789abcdef"
# A backend flushes its pg_stat_database counters at most once a second while busy and
# within 10 s of going idle (PostgreSQL 15): wait that long before reading them.
STATS_SETTLE_S = 11.0
# Each comparison as (A, B): the report gives A / B.
PAIRS = (
    ("http_statement_replica", "http_statement_primary"),
    ("http_transfer_warm_pgbouncer", "http_transfer_warm_direct"),
)
# A point: the bench.http scenario it runs, and the kind of server it runs against.
POINTS = {
    "http_statement_replica": ("http_statement", "replica"),
    "http_statement_primary": ("http_statement", "pgbouncer"),
    "http_transfer_warm_pgbouncer": ("http_transfer_warm", "pgbouncer"),
    "http_transfer_warm_direct": ("http_transfer_warm", "direct"),
}
# Within 10% of each other: the bar for PgBouncer against a direct connection.
POOLER_TOLERANCE = 0.10
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_REPLICA_READS = re.compile(r'^ledgerx_replica_reads_total\{[^}]*target="([^"]+)"[^}]*\}\s+(\S+)\s*$', re.MULTILINE)


# --- Pure parts (bench/tests/test_cluster.py) ---------------------------------------------


def round_points(round_: int) -> tuple[str, ...]:
    """The points of one round: each pair side by side, A first in odd rounds and B first in even ones."""
    order = []
    for a, b in PAIRS:
        order += [a, b] if round_ % 2 else [b, a]
    return tuple(order)


def server_environ(kind: str, db_name: str, *, user: str = "postgres", host: str = "127.0.0.1") -> dict[str, str]:
    """The database settings of a server of ``kind``: ``direct`` (the primary itself), ``pgbouncer``
    (the primary through PgBouncer, transaction pooling) or ``replica`` (that, plus the replica)."""

    def url(port: str) -> str:
        return f"postgres://{user}@{host}:{port}/{db_name}"

    # A proven PIN stays proven for the whole run (the default, 5 minutes, is shorter than a round):
    # the warm transfers' users prove theirs once, not again before every round, at c=16 minutes of
    # bcrypt outside the window. The window measures the same cache hit either way.
    common = {"LEDGERX_METRICS_TOKEN": METRICS_TOKEN, "DATABASE_REPLICA_URLS": "", "LEDGERX_PIN_CACHE_SECONDS": "7200"}
    if kind == "direct":
        return {**common, "DATABASE_URL": url(PRIMARY_PORT), "LEDGERX_DB_TRANSACTION_POOLING": "0"}
    pooled = {**common, "DATABASE_URL": url(BOUNCER_PORT), "LEDGERX_DB_TRANSACTION_POOLING": "1"}
    if kind == "pgbouncer":
        return pooled
    if kind == "replica":
        return {**pooled, "DATABASE_REPLICA_URLS": url(REPLICA_PORT)}
    raise ValueError(kind)


def replica_reads(exposition: str) -> dict[str, float]:
    """``ledgerx_replica_reads_total`` by target (``replica``, ``primary``) from a Prometheus exposition."""
    counts: dict[str, float] = {}
    for target, value in _REPLICA_READS.findall(exposition):
        counts[target] = counts.get(target, 0.0) + float(value)
    return counts


def counts_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """``after - before`` per key (a key missing on one side counts 0 there)."""
    return {key: int(round(after.get(key, 0) - before.get(key, 0))) for key in sorted({*before, *after})}


def share(counts: dict[str, int], key: str) -> float | None:
    """``counts[key]`` as a fraction of all the counts; None when there are none."""
    total = sum(counts.values())
    return counts.get(key, 0) / total if total else None


def counts_sum(many: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in many:
        for key, n in counts.items():
            total[key] = total.get(key, 0) + n
    return total


def median_by_key(many: list[dict[str, float]]) -> dict[str, float]:
    """Per key, the median of its values over ``many`` (the mean of the middle two for an even count)."""
    import statistics

    keys = sorted({k for d in many for k in d})
    return {k: statistics.median([d[k] for d in many if k in d]) for k in keys}


def pair_ratios(samples: dict[tuple, list[dict]], concurrencies) -> list[dict]:
    """For every pair and concurrency: A / B as the median of the round-by-round ratios, and each round's."""
    out = []
    for a, b in PAIRS:
        for c in concurrencies:
            runs_a = [r["rate"] for r in samples.get((a, c), [])]
            runs_b = [r["rate"] for r in samples.get((b, c), [])]
            if not runs_a or len(runs_a) != len(runs_b):
                continue
            out.append(
                {
                    "a": a,
                    "b": b,
                    "concurrency": c,
                    "ratio": paired_ratio(runs_a, runs_b),
                    "rounds": [x / y if y else None for x, y in zip(runs_a, runs_b)],
                }
            )
    return out


def proc_stat_parse(line: str) -> tuple[int, int]:
    """``(ppid, CPU ticks)`` from a ``/proc/<pid>/stat`` line: user + system time of the process
    and of its children it has waited for (so an exited backend's CPU stays counted)."""
    fields = line.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    # fields[0] is stat's field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def tree_ticks(root: int, stats: dict[int, tuple[int, int]]) -> int:
    """CPU ticks of ``root`` and every live descendant of it in ``stats`` (pid -> (ppid, ticks))."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _ticks) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo += children.get(pid, [])
    return total


def cpu_per_op(start: dict[str, int], end: dict[str, int], ops: int, ticks_per_s: int) -> dict[str, float]:
    """CPU milliseconds per operation of each process group, over a window of ``ops`` operations."""
    if not ops:
        return {}
    return {group: (end[group] - start[group]) * 1000 / ticks_per_s / ops for group in start if group in end}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def cluster_markdown(run: dict) -> str:
    """The RESULTS.md section of one ``bench/run cluster`` run (results/cluster.json)."""
    from bench.report import throughput_row
    lines = [
        "## Scaled-out topology (scripts/cluster)",
        "",
        f"`bash bench/run cluster` ({run['date']}, commit `{run['commit']}`, {run['repeats']} rounds of "
        f"{run['duration_s']} s after {run['warmup_s']} s warm-up per point) against `scripts/cluster up`: its "
        f"PostgreSQL primary (:{run['ports']['primary']}), streaming replica (:{run['ports']['replica']}) and "
        f"PgBouncer {run.get('pgbouncer', '')} (:{run['ports']['pgbouncer']}, transaction pooling), with the "
        "benchmark's own gunicorns (repo gunicorn.conf.py), so the two servers of a pair differ in their "
        "database settings only. A and B take turns in every round (A first in odd rounds); a ratio is "
        "the median of the round-by-round ratios. Load before and after: "
        f"`{run.get('uptime_before', '?')}` / `{run.get('uptime_after', '?')}`.",
        "",
        "| scenario | c | per s (median) | every round | p50 ms | p99 ms | completed | failed (by kind) |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    lines += [throughput_row(r, system=False) for r in run["results"]]
    lines += ["", "| ratio | c | A / B | every round | bar |", "| --- | ---: | ---: | --- | --- |"]
    for p in run["ratios"]:
        rounds = ", ".join("n/a" if x is None else f"{x:.2f}" for x in p["rounds"])
        bar = ""
        if p["a"] == "http_transfer_warm_pgbouncer" and p["ratio"] is not None:
            within = abs(1 - p["ratio"]) <= POOLER_TOLERANCE
            bar = f"within {POOLER_TOLERANCE:.0%}: **{'met' if within else 'not met'}**"
        ratio = "n/a" if p["ratio"] is None else f"{p['ratio']:.2f}"
        lines.append(f"| {p['a']} / {p['b']} | {p['concurrency']} | {ratio} | {rounds} | {bar} |")
    lines += [
        "",
        "Where the statement reads ran (every round of the point, warm-up included): the app's "
        "`ledgerx_replica_reads_total` by target, and the bench database's committed transactions "
        "(`pg_stat_database.xact_commit`) on each server. Each statement request also reads its user "
        "(authentication) outside the replica-routed read, and each connection a request uses runs Django's "
        "health check once, so the primary still serves a few transactions per request in both points.",
        "",
        "| scenario | c | requests | app: replica | app: primary | replica share | xact primary | xact replica |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in run["results"]:
        reads = r.get("reads")
        if not reads:
            continue
        app, db = reads["app"], reads["db_xact"]
        lines.append(
            f"| {r['scenario']} | {r['concurrency']} | {reads['requests']} | {app.get('replica', 0)} | "
            f"{app.get('primary', 0)} | {_pct(share(app, 'replica'))} | {db.get('primary', 0)} | {db.get('replica', 0)} |"
        )
    cpu_rows = [r for r in run["results"] if r.get("cpu_ms_per_op")]
    if cpu_rows:
        groups = [g for g in ("app", "pgbouncer", "primary", "replica") if any(g in r["cpu_ms_per_op"] for r in cpu_rows)]
        lines += [
            "",
            "CPU per request in the measured window (median of the rounds; user + system time of each process "
            "tree from `/proc`, so other load on the machine does not enter it): the app server (gunicorn and "
            "its workers), PgBouncer, the primary's and the replica's PostgreSQL processes.",
            "",
            "| scenario | c | " + " | ".join(f"{g} ms" for g in groups) + " | total ms |",
            "| --- | ---: | " + " | ".join("---:" for _ in groups) + " | ---: |",
        ]
        for r in cpu_rows:
            cpu = r["cpu_ms_per_op"]
            cells = " | ".join(f"{cpu[g]:.2f}" if g in cpu else "n/a" for g in groups)
            lines.append(f"| {r['scenario']} | {r['concurrency']} | {cells} | {sum(cpu.get(g, 0) for g in groups):.2f} |")
    if run.get("verify"):
        lines += ["", f"`verify_ledger` on the run's books: {'passed' if run['verify']['ok'] else 'FAILED'}."]
    if run.get("note"):
        lines += ["", run["note"]]
    return "\n".join(lines) + "\n"


SECTION_START = "<!-- bench cluster: start -->"
SECTION_END = "<!-- bench cluster: end -->"
# Where a RESULTS.md without the section gets it: before the hand-written analysis.
SECTION_BEFORE = "\n## What limits LedgerX here"


def with_section(document: str, section: str) -> str:
    """``document`` with the cluster section (between its markers) replaced, or inserted before the analysis."""
    block = f"{SECTION_START}\n{section.rstrip()}\n{SECTION_END}"
    if SECTION_START in document and SECTION_END in document:
        head, rest = document.split(SECTION_START, 1)
        return head + block + rest.split(SECTION_END, 1)[1]
    if SECTION_BEFORE in document:
        head, tail = document.split(SECTION_BEFORE, 1)
        return f"{head.rstrip()}\n\n{block}\n{SECTION_BEFORE}{tail}"
    return f"{document.rstrip()}\n\n{block}\n"


def saved_section() -> str | None:
    """The section of the last cluster run (results/cluster.json), for RESULTS.md; None without one."""
    path = RESULTS / "cluster.json"
    if not path.exists():
        return None
    return f"{SECTION_START}\n{cluster_markdown(json.loads(path.read_text())).rstrip()}\n{SECTION_END}"


# --- The run -----------------------------------------------------------------------------


def _sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def _psql(port: str, db_name: str, sql: str) -> str:
    from bench import env

    out = subprocess.run(
        ["psql", "-h", env.PG_HOST, "-p", port, "-U", env.PG_USER, "-d", db_name, "-Atqc", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def topology_check() -> None:
    for name, port in (("primary", PRIMARY_PORT), ("replica", REPLICA_PORT), ("PgBouncer", BOUNCER_PORT)):
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", port]).returncode != 0:
            raise SystemExit(f"the cluster's {name} is not answering on :{port}: start it with `bash scripts/cluster up`")
    if _psql(REPLICA_PORT, "postgres", "SELECT pg_is_in_recovery()") != "t":
        raise SystemExit(f"the server on :{REPLICA_PORT} is not a replica")


def replica_wait(db_name: str, timeout: float = 60.0) -> None:
    """Until the replica has replayed everything the primary had written when this was called."""
    target = _psql(PRIMARY_PORT, db_name, "SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _psql(REPLICA_PORT, db_name, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == "t":
            return
        time.sleep(0.2)
    raise RuntimeError(f"the replica did not replay {target} within {timeout:.0f} s")


def listener_pid(port: str) -> int | None:
    """The process listening on 127.0.0.1:``port`` (the postmaster, PgBouncer), from ``ss``."""
    out = _sh("ss", "-Hltnp", f"sport = :{port}")
    match = re.search(r"pid=(\d+)", out)
    return int(match.group(1)) if match else None


def cpu_groups(server) -> dict[str, int]:
    """The process trees whose CPU a point counts: the app server, PgBouncer, the primary, the replica."""
    groups = {"app": server.proc.pid}
    for name, port in (("pgbouncer", BOUNCER_PORT), ("primary", PRIMARY_PORT), ("replica", REPLICA_PORT)):
        pid = listener_pid(port)
        if pid:
            groups[name] = pid
    return groups


def cpu_snapshot(groups: dict[str, int]) -> dict[str, int]:
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = proc_stat_parse((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue  # exited meanwhile
    return {group: tree_ticks(pid, stats) for group, pid in groups.items()}


def db_xacts(db_name: str) -> dict[str, float]:
    sql = f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{db_name}'"
    return {"primary": float(_psql(PRIMARY_PORT, db_name, sql) or 0), "replica": float(_psql(REPLICA_PORT, db_name, sql) or 0)}


def app_reads(server) -> dict[str, float]:
    from bench.http import request

    status, body = request("GET", server.port, "/metrics", token=METRICS_TOKEN)
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}: {body[:200]!r}")
    return replica_reads(body.decode())


def books_history(log) -> int:
    """``STATEMENT_HISTORY`` deposits into every regular bench account (the bench's bulk loader)."""
    from bench.books import books_load
    from bench.bulkload import deposits_load

    postings, seconds = deposits_load(counts={a.pk: STATEMENT_HISTORY for a in books_load().accounts})
    log(f"==> {postings:,} postings of statement history in {seconds:.1f} s")
    return postings


def run_cluster(*, log) -> int:
    from bench import cli, env, http
    from bench.scale import verify_ledger_run
    from bench.suite import median_result, quiesce

    topology_check()
    duration = float(os.environ.get("BENCH_HTTP_DURATION", 10))
    warmup = float(os.environ.get("BENCH_WARMUP", 4))
    repeats = max(1, int(os.environ.get("BENCH_REPEATS", 3)))
    concurrencies = tuple(int(c) for c in os.environ.get("BENCH_CLUSTER_CONCURRENCIES", ",".join(map(str, CONCURRENCIES))).split(","))
    run: dict = {
        "mode": "cluster",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _sh("git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"),
        "duration_s": duration,
        "warmup_s": warmup,
        "repeats": repeats,
        "concurrencies": list(concurrencies),
        "ports": {"primary": PRIMARY_PORT, "replica": REPLICA_PORT, "pgbouncer": BOUNCER_PORT},
        "pgbouncer": (_sh("pgbouncer", "--version").splitlines() or ["?"])[0].split(" ")[-1],
        "statement_history": STATEMENT_HISTORY,
        "uptime_before": _sh("uptime"),
    }
    log(f"==> uptime before: {run['uptime_before']}")
    cli.setup()
    books_history(log)
    db_name = env.BENCH_DB
    samples: dict[tuple, list[dict]] = {}
    with (
        http.Server(environ=server_environ("replica", db_name, user=env.PG_USER)) as replica_server,
        http.Server(environ=server_environ("pgbouncer", db_name, user=env.PG_USER)) as pooled_server,
        http.Server(environ=server_environ("direct", db_name, user=env.PG_USER)) as direct_server,
    ):
        servers = {"replica": replica_server, "pgbouncer": pooled_server, "direct": direct_server}
        settled = [False]  # the point before was counted, and its counters waited for

        def measure(point: str, c: int) -> dict:
            scenario, kind = POINTS[point]
            server = servers[kind]
            quiesce(point)
            counted = scenario == "http_statement"
            if counted:
                replica_wait(db_name)
                if not settled[0]:
                    time.sleep(STATS_SETTLE_S)  # the points before have flushed their counters
                app0, db0 = app_reads(server), db_xacts(db_name)
            settled[0] = False
            groups, marks = cpu_groups(server), {}
            result = http.run_http_scenario(
                server, scenario, c, duration, warmup, log=log, window=lambda mark: marks.__setitem__(mark, cpu_snapshot(groups))
            )
            if "start" in marks and "end" in marks:
                result["cpu_ms_per_op"] = cpu_per_op(marks["start"], marks["end"], result["completed"], TICKS_PER_S)
            result["scenario"] = point
            result["line"] = result_line("ledgerx", point, c, result["rate"], result["p50_ms"], result["p99_ms"])
            if counted:
                time.sleep(STATS_SETTLE_S)
                app1, db1 = app_reads(server), db_xacts(db_name)
                result["reads"] = {"app": counts_delta(app0, app1), "db_xact": counts_delta(db0, db1)}
                settled[0] = True
            return result

        for round_ in range(1, repeats + 1):
            for c in concurrencies:
                for point in round_points(round_):
                    result = measure(point, c)
                    samples.setdefault((point, c), []).append(result)
                    cpu = ", ".join(f"{k} {v:.2f}" for k, v in (result.get("cpu_ms_per_op") or {}).items())
                    log(
                        f"  round {round_}/{repeats}: {result['line']}  cpu ms/op: {cpu}"
                        + (f"  reads {result['reads']}" if "reads" in result else "")
                    )

    run["results"] = []
    for c in concurrencies:
        for a, b in PAIRS:
            for point in (a, b):
                rounds = samples[(point, c)]
                median = median_result(rounds)
                if "reads" in rounds[0]:
                    median["reads"] = {
                        "app": counts_sum([r["reads"]["app"] for r in rounds]),
                        "db_xact": counts_sum([r["reads"]["db_xact"] for r in rounds]),
                        "requests": median["completed"],
                        "rounds": [r["reads"] for r in rounds],
                    }
                per_round = [r.get("cpu_ms_per_op") or {} for r in rounds]
                median["cpu_ms_per_op"] = median_by_key(per_round)
                median["cpu_ms_per_op_rounds"] = per_round
                run["results"].append(median)
                print(median["line"], flush=True)
    run["ratios"] = pair_ratios(samples, concurrencies)
    for p in run["ratios"]:
        log(f"  {p['a']} / {p['b']} c={p['concurrency']}: {p['ratio']:.3f} (rounds {', '.join(f'{x:.3f}' for x in p['rounds'])})")
    ok, secs, _rss, output = verify_ledger_run(db_name)
    run["verify"] = {"ok": ok, "seconds": secs, "output": output}
    log(f"==> verify_ledger on {db_name}: {'passed' if ok else 'FAILED'}")
    run["uptime_after"] = _sh("uptime")
    log(f"==> uptime after: {run['uptime_after']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(run, indent=2, default=str))
    results_md = BENCH / "RESULTS.md"
    results_md.write_text(with_section(results_md.read_text() if results_md.exists() else "", cluster_markdown(run)))
    log(f"==> wrote {RESULTS / 'cluster.json'} and the cluster section of {results_md}")
    return 0 if ok else 1
