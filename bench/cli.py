"""Command line of the benchmark (bench/run calls this; see bench/README.md).

    python -m bench setup                          recreate ledgerx_bench and its books
    python -m bench <scenario> <c> <duration_s> <warmup_s>
                                                   one scenario; its result line is printed last
    python -m bench all [--quick]                  everything, then bench/RESULTS.md and the chart
    python -m bench verify                         manage.py verify_ledger on ledgerx_bench
    python -m bench report                         RESULTS.md + chart again from results/latest.json
    python -m bench scale [--quick]                only the long-history phases (JSON on stdout)
    python -m bench profile [--pyinstrument]       statements per operation / a pyinstrument profile
    python -m bench deliveries                     webhook delivery throughput and latency (JSON)
    python -m bench ab <name> <scenario>... [--rounds N] [--concurrency C] [--duration S] [--warmup S]
                                                   interleaved rounds of two or more points (bench/ab.py)
    python -m bench batch_memory                   peak RSS of a process applying 100- vs 1000-item batches (JSON)
    python -m bench batch_rss <items> <batches> [db]
                                                   one size of it, in this process (batch_memory runs it fresh)
    python -m bench cluster                        replica vs primary reads, PgBouncer vs direct, against
                                                   scripts/cluster (bench/cluster.py; bench/run cluster)
"""

from __future__ import annotations

import os
import sys
import time

HTTP_SCENARIOS = (
    "http_transfer", "http_transfer_warm", "http_transfer_warm_nometrics", "http_balance", "http_me", "http_statement",
    "http_batch", "http_batch_1000",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_books() -> None:
    from bench import env

    try:
        env.psql(env.BENCH_DB, "SELECT 1")
        exists = True
    except Exception:  # noqa: BLE001 - no database yet
        exists = False
    if not exists:
        setup()
        return
    env.django_setup()
    from django.core.management import call_command

    from bench.books import books_exist

    call_command("migrate", verbosity=0, interactive=False)  # the code may have moved on since setup
    if not books_exist():
        setup(recreate=False)


def setup(*, recreate: bool = True) -> None:
    from bench import env

    if recreate:
        log(f"==> recreating database {env.BENCH_DB}")
        env.database_recreate(env.BENCH_DB)
    env.django_setup()
    from django.core.management import call_command
    from django_redis import get_redis_connection

    call_command("migrate", verbosity=0, interactive=False)
    get_redis_connection("default").flushdb()  # our own Redis db: stale balances/markers must go
    from bench.books import books_create

    books_create(log=log)


def window_marker():
    """With BENCH_WINDOW_FILE set (``bench/run ab``), a ``window`` callback writing when the measured
    window opens and closes ("start <unix time>", "end <unix time>"), so that another process can
    count the CPU spent inside it; else None."""
    path = os.environ.get("BENCH_WINDOW_FILE")
    if not path:
        return None

    def mark(edge: str) -> None:
        with open(path, "a") as fh:
            fh.write(f"{edge} {time.time():.6f}\n")

    return mark


def run_service_scenario(name: str, concurrency: int, duration: float, warmup: float) -> dict:
    from bench.pool import run_closed_loop
    from bench.scenarios import SCENARIO_FACTORIES, TRANSFERS_PER_OP

    result = run_closed_loop(SCENARIO_FACTORIES[name], concurrency, duration, warmup, log=log, window=window_marker())
    return result.summary("ledgerx", name, transfers_per_op=TRANSFERS_PER_OP.get(name, 1))


def run_one(name: str, concurrency: int, duration: float, warmup: float) -> dict:
    from bench.pgbench import SQL_SCENARIOS
    from bench.scenarios import SCENARIO_FACTORIES

    if name == "tpcb":
        from bench import pgbench

        if not pgbench.pgbench_initialized():
            pgbench.pgbench_init(log=log)
        res = pgbench.run_tpcb(concurrency, int(duration), int(warmup))
        return {
            "system": "pgbench",
            "scenario": "tpcb",
            "concurrency": concurrency,
            "rate": res["tps"],
            "p50_ms": res["p50_ms"],
            "p99_ms": res["p99_ms"],
            "completed": res["transactions"],
            "failures": {"failed": res["failed"]} if res["failed"] else {},
            "line": res["line"],
        }
    if name in SQL_SCENARIOS:
        from bench import env, pgbench

        ensure_books()
        res = pgbench.run_sql_movement(name, concurrency, int(duration), int(warmup), env.BENCH_DB)
        # Its audit records are queued but nobody sealed them (no Python ran): seal them now,
        # outside any measured window, so the next scenario does not pay for them.
        env.django_setup()
        from django.db import connections

        from audit.services.sealing import audit_seal_pending

        audit_seal_pending(wait=True)
        connections.close_all()
        return {
            "system": "sql",
            "scenario": name,
            "concurrency": concurrency,
            "rate": res["tps"],
            "p50_ms": res["p50_ms"],
            "p99_ms": res["p99_ms"],
            "completed": res["transactions"],
            "failures": {"failed": res["failed"]} if res["failed"] else {},
            "line": res["line"],
        }
    if name in SCENARIO_FACTORIES:
        ensure_books()
        return run_service_scenario(name, concurrency, duration, warmup)
    if name in HTTP_SCENARIOS:
        ensure_books()
        from bench import http

        with http.Server(pin_cache_seconds=http.PIN_CACHE_FOR[name], metrics=name not in http.METRICS_OFF) as server:
            return http.run_http_scenario(server, name, concurrency, duration, warmup, log=log, window=window_marker())
    raise SystemExit(f"unknown scenario {name!r}")


def verify() -> int:
    from bench import env

    env.django_setup()
    from bench.scale import verify_ledger_run

    ok, seconds, rss_kb, output = verify_ledger_run(env.BENCH_DB)
    print(output)
    print(f"verify_ledger {'passed' if ok else 'FAILED'} in {seconds:.1f}s, max RSS {rss_kb / 1024:.0f} MiB")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args[0] == "setup":
        setup()
        return 0
    if args[0] == "verify":
        return verify()
    if args[0] == "report":  # rewrite RESULTS.md and the chart from results/latest.json
        import json

        from bench.report import BENCH, chart, results_markdown

        run = json.loads((BENCH / "results" / "latest.json").read_text())
        chart(run, BENCH / "results" / "transfers.png")
        (BENCH / "RESULTS.md").write_text(results_markdown(run))
        print(f"wrote {BENCH / 'RESULTS.md'}")
        return 0
    if args[0] == "deliveries":  # webhook delivery throughput and latency (bench/deliveries.py)
        import json

        ensure_books()
        from bench.deliveries import run_deliveries

        print(json.dumps(run_deliveries(log=log)))
        return 0
    if args[0] == "batch_memory":  # each size in a fresh process (bench/batch_memory.py)
        import json

        ensure_books()
        from bench.batch_memory import batch_memory_run, peak_ratio

        out = batch_memory_run(log=log)
        out["peak_ratio"] = peak_ratio(out)
        print(json.dumps(out))
        return 0
    if args[0] == "batch_rss":
        import json

        from bench.batch_memory import batch_rss

        db_name = args[3] if len(args) > 3 else None
        print(json.dumps(batch_rss(int(args[1]), int(args[2]), db_name=db_name)), flush=True)
        return 0
    if args[0] == "scale":
        import json

        from bench import env
        from bench.scale import run_scale

        env.django_setup(env.SCALE_DB)
        out = run_scale(quick="--quick" in args[1:], log=log)
        print(json.dumps(out, indent=2, default=str))
        return 0
    if args[0] == "profile":
        ensure_books()
        from bench.profile import RESULTS, pyinstrument_random, run_profile  # noqa: F401

        if "--pyinstrument" in args[1:]:
            from bench.profile import cprofile_cpu

            text = pyinstrument_random()
            (RESULTS / "profile-random.txt").write_text(text)
            cpu = cprofile_cpu()
            (RESULTS / "cprofile-random.txt").write_text(cpu)
            text += "\n" + cpu
        else:
            text = run_profile(log=log)
        print(text)
        return 0
    if args[0] == "cluster":  # against the topology scripts/cluster started (bench/cluster.py)
        from bench.cluster import run_cluster

        return run_cluster(log=log)
    if args[0] == "ab":  # interleaved comparisons (bench/ab.py)
        from bench.ab import main as ab_main

        return ab_main(args[1:], log)
    if args[0] == "all":
        from bench.suite import run_all

        return run_all(quick="--quick" in args[1:], log=log)
    if len(args) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    name, concurrency, duration, warmup = args[0], int(args[1]), float(args[2]), float(args[3])
    result = run_one(name, concurrency, duration, warmup)
    if result.get("failures"):
        log(f"  failures: {result['failures']}")
    print(result["line"], flush=True)
    return 0
