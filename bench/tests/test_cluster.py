"""The pure parts of ``bench/cluster.py``: the turns of the A/B points, the read split, the ratios,
the servers' database settings and the RESULTS.md section."""

from bench.cluster import (
    PAIRS,
    POINTS,
    SECTION_END,
    SECTION_START,
    cluster_markdown,
    counts_delta,
    counts_sum,
    cpu_per_op,
    median_by_key,
    pair_ratios,
    proc_stat_parse,
    replica_reads,
    round_points,
    server_environ,
    share,
    tree_ticks,
    with_section,
)

EXPOSITION = """# HELP ledgerx_replica_reads_total Reads a replica may serve, by where they ran.
# TYPE ledgerx_replica_reads_total counter
ledgerx_replica_reads_total{target="replica"} 1200.0
ledgerx_replica_reads_total{target="primary"} 3.0
ledgerx_replica_reads_created{target="replica"} 1.7e+09
ledgerx_http_requests_total{method="GET",route="x",status="2xx"} 99.0
"""


def test_every_point_runs_once_a_round_with_its_pair_side_by_side_in_turns():
    first, second, third = round_points(1), round_points(2), round_points(3)
    assert first == (
        "http_statement_replica",
        "http_statement_primary",
        "http_transfer_warm_pgbouncer",
        "http_transfer_warm_direct",
    )
    assert second == (
        "http_statement_primary",
        "http_statement_replica",
        "http_transfer_warm_direct",
        "http_transfer_warm_pgbouncer",
    )
    assert third == first
    for order in (first, second):
        assert sorted(order) == sorted(POINTS)
        for a, b in PAIRS:
            assert abs(order.index(a) - order.index(b)) == 1


def test_replica_reads_parses_the_counter_by_target_only():
    assert replica_reads(EXPOSITION) == {"replica": 1200.0, "primary": 3.0}
    assert replica_reads("") == {}
    # Several series of one target (another label beside it) add up.
    two = 'ledgerx_replica_reads_total{pod="a",target="replica"} 2.0\nledgerx_replica_reads_total{target="replica",pod="b"} 5\n'
    assert replica_reads(two) == {"replica": 7.0}


def test_the_split_is_the_difference_of_two_readings():
    before = {"replica": 1200.0, "primary": 3.0}
    after = {"replica": 2450.0, "primary": 8.0, "other": 1.0}
    delta = counts_delta(before, after)
    assert delta == {"other": 1, "primary": 5, "replica": 1250}
    assert counts_delta({}, {"replica": 4.0}) == {"replica": 4}
    assert share({"replica": 750, "primary": 250}, "replica") == 0.75
    assert share({"primary": 10}, "replica") == 0.0
    assert share({}, "replica") is None
    assert counts_sum([{"replica": 2, "primary": 1}, {"replica": 3}]) == {"replica": 5, "primary": 1}


def _result(point, c, rate):
    return {"scenario": point, "concurrency": c, "rate": rate}


def test_pair_ratios_are_medians_of_the_round_by_round_ratios():
    samples = {
        ("http_statement_replica", 4): [_result("r", 4, 100), _result("r", 4, 130), _result("r", 4, 60)],
        ("http_statement_primary", 4): [_result("p", 4, 100), _result("p", 4, 100), _result("p", 4, 50)],
        ("http_transfer_warm_pgbouncer", 4): [_result("b", 4, 90)],
        ("http_transfer_warm_direct", 4): [_result("d", 4, 100), _result("d", 4, 100)],  # a round missing
    }
    (ratio,) = pair_ratios(samples, (4, 16))
    assert (ratio["a"], ratio["b"], ratio["concurrency"]) == ("http_statement_replica", "http_statement_primary", 4)
    assert ratio["rounds"] == [1.0, 1.3, 1.2]
    assert ratio["ratio"] == 1.2  # not 290 / 250 = 1.16, the ratio of the sums


def test_the_servers_of_a_pair_differ_in_their_database_settings_only():
    replica = server_environ("replica", "db1")
    pooled = server_environ("pgbouncer", "db1")
    direct = server_environ("direct", "db1")
    assert pooled["DATABASE_URL"] == "postgres://postgres@127.0.0.1:6441/db1"
    assert pooled["LEDGERX_DB_TRANSACTION_POOLING"] == "1" and pooled["DATABASE_REPLICA_URLS"] == ""
    assert {k for k in replica if replica[k] != pooled[k]} == {"DATABASE_REPLICA_URLS"}
    assert replica["DATABASE_REPLICA_URLS"] == "postgres://postgres@127.0.0.1:5442/db1"
    assert direct["DATABASE_URL"] == "postgres://postgres@127.0.0.1:5441/db1"
    assert {k for k in direct if direct[k] != pooled[k]} == {"DATABASE_URL", "LEDGERX_DB_TRANSACTION_POOLING"}
    assert direct["LEDGERX_DB_TRANSACTION_POOLING"] == "0"


def _run():
    point = lambda name, rate, **extra: {  # noqa: E731
        "system": "ledgerx",
        "scenario": name,
        "concurrency": 4,
        "rate": rate,
        "runs": [rate, rate],
        "p50_ms": 5.0,
        "p99_ms": 9.0,
        "completed": 100,
        "failures": {},
        **extra,
    }
    reads = {"app": {"replica": 90, "primary": 10}, "db_xact": {"primary": 101, "replica": 95}, "requests": 100}
    return {
        "date": "2026-12-03 15:00 UTC",
        "commit": "abc1234",
        "repeats": 2,
        "duration_s": 10.0,
        "warmup_s": 4.0,
        "ports": {"primary": "5441", "replica": "5442", "pgbouncer": "6441"},
        "pgbouncer": "1.18.0",
        "uptime_before": "load average: 1.0",
        "uptime_after": "load average: 2.0",
        "results": [
            point("http_statement_replica", 500.0, reads=reads),
            point("http_transfer_warm_pgbouncer", 200.0, cpu_ms_per_op={"app": 10.0, "pgbouncer": 0.5, "primary": 2.25}),
            point("http_transfer_warm_direct", 250.0),
        ],
        "ratios": [
            {"a": "http_transfer_warm_pgbouncer", "b": "http_transfer_warm_direct", "concurrency": 4, "ratio": 0.8, "rounds": [0.8, 0.8]},
            {"a": "http_statement_replica", "b": "http_statement_primary", "concurrency": 4, "ratio": 1.05, "rounds": [1.0, 1.1]},
        ],
        "verify": {"ok": True},
    }


def test_cluster_markdown_shows_every_round_the_split_and_the_pooler_bar():
    text = cluster_markdown(_run())
    assert text.startswith("## Scaled-out topology (scripts/cluster)\n")
    assert "| http_statement_replica | 4 | 500.0 | 500, 500 | 5.00 | 9.00 | 100 | 0 |" in text
    assert "| http_statement_replica | 4 | 100 | 90 | 10 | 90% | 101 | 95 |" in text
    assert "| http_transfer_warm_pgbouncer / http_transfer_warm_direct | 4 | 0.80 | 0.80, 0.80 | within 10%: **not met** |" in text
    assert "| http_statement_replica / http_statement_primary | 4 | 1.05 | 1.00, 1.10 |  |" in text
    assert "`verify_ledger` on the run's books: passed." in text
    assert "| scenario | c | app ms | pgbouncer ms | primary ms | total ms |" in text
    assert "| http_transfer_warm_pgbouncer | 4 | 10.00 | 0.50 | 2.25 | 12.75 |" in text


def test_with_section_inserts_before_the_analysis_then_replaces_itself():
    doc = "# Benchmark results\n\n| a |\n\n## What limits LedgerX here (evidence)\n\ntext\n"
    once = with_section(doc, "## Scaled-out topology\n\nfirst\n")
    assert once.index(SECTION_START) < once.index("first") < once.index(SECTION_END) < once.index("## What limits")
    assert once.startswith("# Benchmark results\n\n| a |\n\n" + SECTION_START)
    twice = with_section(once, "## Scaled-out topology\n\nsecond\n")
    assert "first" not in twice and twice.count(SECTION_START) == 1
    assert twice.replace("second", "first") == once
    assert with_section("", "x").strip() == f"{SECTION_START}\nx\n{SECTION_END}"


def test_proc_stat_parse_reads_ppid_and_cpu_ticks_with_a_command_name_of_spaces_and_parentheses():
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
    line = "4242 (postgres: a (b) c) S 77 4242 4242 0 -1 4194560 10 0 0 0 150 30 7 3 20 0 1 0 99 1 2\n"
    assert proc_stat_parse(line) == (77, 150 + 30 + 7 + 3)


def test_tree_ticks_sums_a_process_and_its_descendants_only():
    stats = {1: (0, 5), 10: (1, 100), 11: (10, 7), 12: (10, 3), 20: (1, 50), 111: (11, 1)}
    assert tree_ticks(10, stats) == 100 + 7 + 3 + 1
    assert tree_ticks(20, stats) == 50
    assert tree_ticks(999, stats) == 0


def test_cpu_per_op_and_median_by_key():
    start, end = {"app": 1000, "primary": 200}, {"app": 1600, "primary": 260, "pgbouncer": 5}
    assert cpu_per_op(start, end, 300, 100) == {"app": 20.0, "primary": 2.0}  # 6 s / 300, 0.6 s / 300
    assert cpu_per_op(start, end, 0, 100) == {}
    assert median_by_key([{"app": 3.0, "x": 1.0}, {"app": 1.0}, {"app": 2.0}]) == {"app": 2.0, "x": 1.0}
