"""The pgbench TPC-B baseline on the same server, in the same run.

``pgbench -i -s 10`` into its own database, then per client count
``pgbench -c C -j min(C, 2) -T D -n`` after a warm-up run of W seconds. pgbench
prints only average latency, so p50/p99 come from its per-transaction log
(``--log``: one line per transaction, the 3rd field is its latency in us).
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import tempfile

from bench.stats import percentile, result_line

PG_HOST = os.environ.get("BENCH_PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PGPORT", "5432")
PG_USER = os.environ.get("BENCH_PGUSER", "postgres")
PGBENCH_DB = os.environ.get("BENCH_PGBENCH_DB", "ledgerx_bench_pgbench")
SCALE = 10


def _conn_args() -> list[str]:
    return ["-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER]


def pgbench_init(log=print) -> None:
    """(Re)create the pgbench database and load TPC-B at scale 10."""
    subprocess.run(["dropdb", *_conn_args(), "--if-exists", "--force", PGBENCH_DB], check=True)
    subprocess.run(["createdb", *_conn_args(), PGBENCH_DB], check=True)
    log(f"==> pgbench -i -s {SCALE} {PGBENCH_DB}")
    subprocess.run(
        ["pgbench", *_conn_args(), "-i", "-s", str(SCALE), "-q", PGBENCH_DB],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def pgbench_initialized() -> bool:
    probe = subprocess.run(
        ["psql", *_conn_args(), "-d", PGBENCH_DB, "-Atqc", "SELECT count(*) FROM pgbench_branches"],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0 and probe.stdout.strip() == str(SCALE)


def _pgbench(concurrency: int, seconds: int, extra: list[str], cwd: str, db: str = PGBENCH_DB) -> str:
    jobs = min(concurrency, 2)
    proc = subprocess.run(
        ["pgbench", *_conn_args(), "-c", str(concurrency), "-j", str(jobs), "-T", str(seconds), "-n", *extra, db],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=True,
    )
    return proc.stdout


def run_tpcb(concurrency: int, duration_s: int, warmup_s: int) -> dict:
    """One measured pgbench TPC-B run; returns tps, p50/p99 (ms), failures and the result line."""
    return _measure("pgbench", "tpcb", concurrency, duration_s, warmup_s, [], PGBENCH_DB)


# ``sql_random`` and ``sql_hot``: the same movements as the service's ``random`` and
# ``hot`` scenarios -- one call of ledgerx_movement_create with its idempotency key,
# in-flight lock and audit record -- driven by pgbench's C client instead of Python:
# what the database side alone sustains. Their transaction and audit ids are
# time-ordered (version 7) like the service's (ledgerx.ids): PostgreSQL 15 has no
# uuidv7(), so the benchmark defines one.
_SQL_MOVEMENT_CALL = r"""
SELECT f.* FROM bench_sql_accounts s{destination_from},
  LATERAL ledgerx_movement_create(
    (random() * 9e18)::bigint, false, s.owner_id, 'transfer', false, s.id, {destination}, NULL, 'USD',
    1 + (random() * 99)::int, bench_uuid7(), now(), NULL, '', '{{}}', 'transfers',
    gen_random_uuid()::text, md5(random()::text) || md5(random()::text),
    '{{"type": "transfer", "status": "committed", "currency": "USD", "metadata": {{}}}}',
    bench_uuid7(), 'transaction.transfer', NULL, '',
    '{{"type": "transfer", "status": "committed", "currency": "USD", "metadata": {{}}}}') f
 WHERE s.n = :a{destination_where};
"""
SQL_SCRIPTS = {
    # Two distinct regular accounts, as ``random`` picks them.
    "sql_random": "\\set a random(1, :n_accounts)\n\\set b 1 + (:a + random(0, :n_accounts - 2)) % :n_accounts"
    + _SQL_MOVEMENT_CALL.format(destination_from=", bench_sql_accounts d", destination="d.id", destination_where=" AND d.n = :b"),
    # A regular account pays the hot one, as in ``hot``. The hot account's id goes
    # into the script as a literal: with a join on a one-row table for it instead,
    # every call took ~10 ms (against ~1 ms with the same id as a literal).
    "sql_hot": "\\set a random(1, :n_accounts)"
    + _SQL_MOVEMENT_CALL.format(destination_from="", destination="'{hot}'::uuid", destination_where=""),
}
SQL_SCENARIOS = tuple(SQL_SCRIPTS)

_SQL_SETUP = (
    "CREATE OR REPLACE FUNCTION bench_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$ "
    # Unix milliseconds over the first 48 bits of a random UUID, version nibble 4 -> 7.
    "SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING "
    "substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) "
    "FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid $$; "
    "CREATE TABLE IF NOT EXISTS bench_sql_accounts AS "
    "SELECT row_number() OVER (ORDER BY id)::int AS n, id, owner_id FROM ledger_ledgeraccount "
    "WHERE kind = 'customer' AND currency = 'USD' AND name <> 'bench-hot'; "
    "SELECT count(*), (SELECT id FROM ledger_ledgeraccount WHERE name = 'bench-hot') FROM bench_sql_accounts"
)


def run_sql_movement(scenario: str, concurrency: int, duration_s: int, warmup_s: int, db: str) -> dict:
    """``sql_random`` or ``sql_hot`` on the benchmark's books (its 999 regular accounts and the hot one)."""
    count, hot = subprocess.run(
        ["psql", *_conn_args(), "-d", db, "-AtqF", " ", "-c", _SQL_SETUP], capture_output=True, text=True, check=True
    ).stdout.split()[-2:]
    with tempfile.TemporaryDirectory(prefix="bench-sql-") as tmp:
        script = os.path.join(tmp, f"{scenario}.sql")
        with open(script, "w") as fh:
            fh.write(SQL_SCRIPTS[scenario].replace("{hot}", hot))
        extra = ["-f", script, "-D", f"n_accounts={count}"]
        return _measure("sql", scenario, concurrency, duration_s, warmup_s, extra, db)


def _measure(system, scenario, concurrency, duration_s, warmup_s, extra, db) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
        if warmup_s > 0:
            _pgbench(concurrency, warmup_s, extra, tmp, db)
        out = _pgbench(concurrency, duration_s, [*extra, "--log", "--log-prefix", "txlog"], tmp, db)
        latencies_ms: list[float] = []
        for path in glob.glob(os.path.join(tmp, "txlog.*")):
            with open(path) as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) >= 3 and parts[2].isdigit():
                        latencies_ms.append(int(parts[2]) / 1000.0)
    tps_match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    failed_match = re.search(r"number of failed transactions: (\d+)", out)
    tps = float(tps_match.group(1)) if tps_match else len(latencies_ms) / duration_s
    p50 = percentile(latencies_ms, 50) if latencies_ms else 0.0
    p99 = percentile(latencies_ms, 99) if latencies_ms else 0.0
    return {
        "tps": tps,
        "p50_ms": p50,
        "p99_ms": p99,
        "transactions": len(latencies_ms),
        "failed": int(failed_match.group(1)) if failed_match else 0,
        "line": result_line(system, scenario, concurrency, tps, p50, p99),
    }
