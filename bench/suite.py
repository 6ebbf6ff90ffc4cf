"""``python -m bench all [--quick]``: every measurement of the issue, in one run.

Order: machine facts; pgbench init and LedgerX books; then
``BENCH_REPEATS`` rounds (3; 1 with ``--quick``) of: for each concurrency (1,
4, 16) pgbench TPC-B, the service scenarios (the batches among them; the 1000-item
batch at c=1 only, ``CONCURRENCIES_OF``), ``sql_random`` and ``sql_hot``
(the movement function driven by pgbench's C client) interleaved, the two points
of each ratio target side by side (``round_points``), each point after ``quiesce``
-- each point reports the median of its rounds and keeps every round's rate and
failures, and the report's ratios are medians of round-by-round ratios; the peak
memory of a process applying 100- and 1000-item batches (``bench.batch_memory``); the bcrypt
ceiling; the HTTP scenarios against one gunicorn (`http_me` and `http_balance` in
every round, ``http_round_points``, each point after ``quiesce`` too); ``verify_ledger`` on the
benchmark's books; the long-history phases. Result lines go to stdout as they
come; results/latest.json, RESULTS.md and results/transfers.png at the end
(``--quick`` writes results/*-quick.* and leaves RESULTS.md alone).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.pgbench import SQL_SCENARIOS

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONCURRENCIES = (1, 4, 16)
HTTP_PAIR = ("http_me", "http_balance")  # target 5: the balance read against a trivial authenticated read
# The warm transfer is also a ratio to http_me, and to itself with every metric off (target 8);
# the batch of 100 over HTTP a ratio to `batch_random` (target 9).
HTTP_EVERY_ROUND = (*HTTP_PAIR, "http_transfer_warm", "http_transfer_warm_nometrics", "http_batch", "http_batch_1000")
HTTP_ORDER = (*HTTP_EVERY_ROUND, "http_transfer")
# Points measured at some concurrencies only: the 1000-item batch's bar is an answer within 1 s
# to one client, and it is the most one request may carry.
CONCURRENCIES_OF = {"batch_1000": (1,), "http_batch_1000": (1,)}


def _sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return "?"


def machine_facts() -> dict:
    from bench import env

    free = _sh("free", "-h").splitlines()
    mem = free[1].split() if len(free) > 1 else ["?"] * 7
    commit = _sh("git", "rev-parse", "--short", "HEAD")
    dirty = _sh("git", "status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": int(_sh("nproc") or 0),
        "mem_total": mem[1],
        "mem_available": mem[6] if len(mem) > 6 else "?",
        "postgres": env.psql("postgres", "SELECT version()").split(" on ")[0],
        "commit": commit + (" (working tree had uncommitted changes)" if dirty else ""),
    }


def median_result(runs: list[dict]) -> dict:
    """The run with the median rate, carrying every run's rate and the failures of all of them."""
    ordered = sorted(runs, key=lambda r: r["rate"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["runs"] = [r["rate"] for r in runs]
    failures: dict = {}
    for r in runs:
        for kind, n in (r.get("failures") or {}).items():
            failures[kind] = failures.get(kind, 0) + n
    median["failures"] = failures
    median["completed"] = sum(r.get("completed") or 0 for r in runs)
    return median


# Per concurrency and round, in this order (``round_points``). The two points of a ratio target
# run side by side -- pgbench and `random` (target 1), `random` and `random_noaudit` (target 4),
# `hot` next to pgbench (target 2) -- so the report's round-by-round ratios compare points
# taken seconds apart. The batches (target 9, ratios to pgbench) follow `hot`. The
# pgbench-driven movements go last: they leave their audit records to be sealed after their
# window, tens of thousands at a time.
POINT_ORDER = (
    "tpcb", "random", "random_noaudit", "random_nometrics", "random_noxid", "hot", "batch_random", "batch_hot",
    "batch_1000", "deposit", "hold_commit", "conversion", *SQL_SCENARIOS,
)


def round_points(round_: int) -> tuple[str, ...]:
    """``POINT_ORDER`` for round 1, 3, ...; in round 2, 4, ... the first three run backwards.

    So `random_noaudit` runs before `random` in every other round (neither is
    always the one after a pgbench point), and `random` stays next to both pgbench
    and `random_noaudit`.
    """
    if round_ % 2:
        return POINT_ORDER
    head, tail = POINT_ORDER[:3], POINT_ORDER[3:]
    return (*reversed(head), *tail)


def http_round_points(round_: int) -> tuple[str, ...]:
    """The HTTP points of one round: `http_me`, `http_balance` and `http_transfer_warm` (the
    points of ratios to `http_me`) side by side in every round, in turn which first;
    `http_transfer` (against the bcrypt ceiling, ~30 s a point) in round 1 only."""
    points = HTTP_EVERY_ROUND if round_ % 2 else HTTP_EVERY_ROUND[::-1]
    return (*points, "http_transfer") if round_ == 1 else points


def measured_at(name: str, c: int) -> bool:
    """Whether the suite measures ``name`` at concurrency ``c`` (``CONCURRENCIES_OF``; else every one)."""
    return c in CONCURRENCIES_OF.get(name, CONCURRENCIES)


def measure_rounds(repeats: int, points, measure, log) -> dict[tuple, list[dict]]:
    """``measure(name, c)`` for every point of ``points(round_)`` at every concurrency it has, in whole rounds.

    Whole rounds, not one point three times in a row: drift then hits every
    point alike. Returns ``{(name, c): [result of each round, in round order]}``.
    """
    samples: dict[tuple, list[dict]] = {}
    for round_ in range(1, repeats + 1):
        for c in CONCURRENCIES:
            for name in points(round_):
                if not measured_at(name, c):
                    continue
                result = measure(name, c)
                samples.setdefault((name, c), []).append(result)
                log(f"  round {round_}/{repeats}: {result['line']}")
    return samples


def quiesce(name: str) -> None:
    """Start every point from the same state: its database vacuumed, no checkpoint pending.

    Autovacuum is off on this shared server (in production it is on, and the
    sealing queue's deleted rows are its daily work), and the writes of one
    point -- sealing a pgbench-driven point's records above all -- would
    otherwise start a checkpoint in the next point's window.
    """
    from bench import env, pgbench

    env.psql(pgbench.PGBENCH_DB if name == "tpcb" else env.BENCH_DB, "VACUUM")
    env.psql(env.BENCH_DB, "CHECKPOINT")


def _scale_phases(*, quick: bool, log) -> dict:
    from bench.scale import run_scale

    try:
        return run_scale(quick=quick, log=log)
    except Exception:  # noqa: BLE001 - keep the throughput results of this run
        import traceback

        log(f"==> scale phases FAILED:\n{traceback.format_exc()}")
        return {"error": traceback.format_exc()[-2000:]}


def run_all(*, quick: bool, log) -> int:
    from bench import cli, env

    duration = float(os.environ.get("BENCH_DURATION", 3 if quick else 12))
    warmup = float(os.environ.get("BENCH_WARMUP", 1 if quick else 4))
    http_duration = float(os.environ.get("BENCH_HTTP_DURATION", 3 if quick else 10))
    started = time.monotonic()
    run: dict = {
        "mode": "quick" if quick else "full",
        "duration_s": duration,
        "warmup_s": warmup,
        "machine": machine_facts(),
        "results": [],
    }
    log(f"==> machine: {run['machine']}")

    def emit(result: dict) -> None:
        run["results"].append(result)
        if result.get("failures"):
            log(f"  failures: {result['failures']}")
        print(result["line"], flush=True)

    from bench import pgbench

    pgbench.pgbench_init(log=log)
    cli.setup()
    repeats = max(1, int(os.environ.get("BENCH_REPEATS", 1 if quick else 3)))
    run["repeats"] = repeats
    run["before_each_point"] = "VACUUM of the point's database, CHECKPOINT"

    def service_point(name: str, c: int) -> dict:
        quiesce(name)
        return cli.run_one(name, c, duration, warmup)

    samples = measure_rounds(repeats, round_points, service_point, log)
    for c in CONCURRENCIES:
        for name in POINT_ORDER:
            if (name, c) in samples:
                emit(median_result(samples[(name, c)]))

    from bench.batch_memory import batch_memory_run

    try:
        env.psql(env.BENCH_DB, "VACUUM")
        run["batch_memory"] = batch_memory_run(log=log)
    except Exception:  # noqa: BLE001 - keep the throughput results of this run
        import traceback

        log(f"==> batch memory FAILED:\n{traceback.format_exc()}")

    from bench import http

    seconds = http.bcrypt_check_seconds()
    run["bcrypt"] = {"seconds": seconds, "samples": 5, "ceiling_per_s": run["machine"]["nproc"] / seconds}
    log(f"==> bcrypt cost 12: {seconds * 1000:.0f} ms; ceiling {run['bcrypt']['ceiling_per_s']:.2f}/s")
    # A PIN-checked transfer takes ~0.3 s alone and seconds at c=16: give it a longer
    # window (and warm-up) so whole requests, not the window's edges, set the rate.
    transfer_duration = float(os.environ.get("BENCH_HTTP_TRANSFER_DURATION", 6 if quick else 24))
    transfer_warmup = max(warmup, 3 if quick else 6)
    run["http_transfer_window"] = {"duration_s": transfer_duration, "warmup_s": transfer_warmup}
    try:
        # http_transfer against a server with the verified-PIN cache off: a bcrypt check every request.
        # and the metrics' cost against a server with every metric off.
        with (
            http.Server() as server,
            http.Server(pin_cache_seconds=0) as cold_server,
            http.Server(metrics=False) as bare_server,
        ):

            def http_point(name: str, c: int) -> dict:
                quiesce(name)
                d, w = (transfer_duration, transfer_warmup) if name == "http_transfer" else (http_duration, warmup)
                if name in http.METRICS_OFF:
                    target = bare_server
                else:
                    target = cold_server if http.PIN_CACHE_FOR[name] == 0 else server
                return http.run_http_scenario(target, name, c, d, w, log=log)

            http_samples = measure_rounds(repeats, http_round_points, http_point, log)
            for c in CONCURRENCIES:
                for name in HTTP_ORDER:
                    if (name, c) in http_samples:
                        emit(median_result(http_samples[(name, c)]))
    except Exception:  # noqa: BLE001 - keep the service-layer results of this run
        import traceback

        log(f"==> HTTP scenarios FAILED:\n{traceback.format_exc()}")

    from bench.scale import verify_ledger_run

    ok, secs, rss, output = verify_ledger_run(env.BENCH_DB)
    run["verify_bench"] = {"ok": ok, "seconds": secs, "max_rss_kb": rss, "output": output}
    log(f"==> verify_ledger on {env.BENCH_DB}: {'passed' if ok else 'FAILED'} ({secs:.1f}s)\n{output}")

    if os.environ.get("BENCH_SCALE", "1") == "0":
        # The long-history phases (tens of minutes at full size) left out of this run:
        # their targets read "not measured", and RESULTS.md says so.
        run["scale"], run["scale_skipped"] = {}, True
        log("==> scale phases skipped (BENCH_SCALE=0)")
    else:
        run["scale"] = _scale_phases(quick=quick, log=log)
    run["elapsed_s"] = time.monotonic() - started

    from bench.report import chart, results_markdown, targets

    suffix = "-quick" if quick else ""
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"latest{suffix}.json").write_text(json.dumps(run, indent=2, default=str))
    chart(run, results_dir / f"transfers{suffix}.png")
    plans = []
    for label, st in (run["scale"].get("statement") or {}).items():
        for page, plan in (st.get("explain") or {}).items():
            plans.append(f"## {label} account ({st['postings']:,} postings), statement {page}\n\n```\n{plan}\n```\n")
    if plans:  # a run without the scale phases keeps the last plans
        (results_dir / f"explain{suffix}.md").write_text("# EXPLAIN ANALYZE of the statement query\n\n" + "\n".join(plans))
    md = results_markdown(run)
    (BENCH / "RESULTS.md" if not quick else results_dir / "RESULTS-quick.md").write_text(md)
    log(f"==> done in {run['elapsed_s'] / 60:.1f} min")
    for t in targets(run):
        state = "not measured" if t["met"] is None else ("met" if t["met"] else "NOT MET")
        log(f"  target {t['n']}: {t['target']}: {t['measured']} -> {state}")
    return 0 if run["verify_bench"]["ok"] else 1
