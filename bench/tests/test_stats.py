"""Unit test of the harness's pure arithmetic. Run: python -m pytest bench/tests -q
(bench/ is outside pytest.ini's testpaths, so the project suite never runs it)."""

import pytest

from bench.stats import parse_result_line, percentile, ratio, result_line


def test_percentile_nearest_rank():
    values = list(range(100, 0, -1))  # 100..1, unsorted input
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([7.5], 99) == 7.5
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([1, 2, 3, 4], 51) == 3


def test_percentile_rejects_empty_and_out_of_range():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_result_line_round_trips():
    line = result_line("ledgerx", "random", 4, 812.345, 4.5678, 19.0)
    assert line == "ledgerx random 4 812.3 4.57 19.00"
    assert parse_result_line(line) == {
        "system": "ledgerx",
        "scenario": "random",
        "concurrency": 4,
        "rate": 812.3,
        "p50_ms": 4.57,
        "p99_ms": 19.0,
    }


def test_ratio():
    assert ratio(3, 4) == 0.75
    assert ratio(None, 4) is None
    assert ratio(3, 0) is None


def test_a_point_reports_the_median_round_with_every_rate_and_all_failures():
    from bench.suite import median_result

    runs = [
        {"rate": 300.0, "line": "a", "failures": {"deadlock": 1}, "completed": 10},
        {"rate": 100.0, "line": "b", "failures": {}, "completed": 20},
        {"rate": 200.0, "line": "c", "failures": {"deadlock": 2, "other": 1}, "completed": 30},
    ]
    median = median_result(runs)
    assert (median["rate"], median["line"], median["runs"]) == (200.0, "c", [300.0, 100.0, 200.0])
    assert median["failures"] == {"deadlock": 3, "other": 1} and median["completed"] == 60


def test_paired_ratio_is_the_median_of_round_by_round_ratios():
    from bench.stats import paired_ratio

    # Round 2 ran on a machine twice as fast for both points: the paired ratio
    # stays 0.5, where the ratio of the medians (150 / 240) does not.
    assert paired_ratio([100, 200, 150], [200, 400, 240]) == 0.5
    assert paired_ratio([100, 300], [200, 400]) == pytest.approx((0.5 + 0.75) / 2)
    assert paired_ratio([], []) is None
    assert paired_ratio([1, 2], [1]) is None
    assert paired_ratio([1], [0]) is None


def test_every_round_runs_every_point_with_each_ratio_pair_side_by_side():
    from bench.suite import POINT_ORDER, round_points

    for round_ in (1, 2, 3, 4):
        points = round_points(round_)
        assert sorted(points) == sorted(POINT_ORDER)
        position = {name: points.index(name) for name in points}
        assert abs(position["random"] - position["tpcb"]) == 1
        assert abs(position["random"] - position["random_noaudit"]) == 1
    # The audit pair alternates which of the two runs first.
    assert round_points(1).index("random") < round_points(1).index("random_noaudit")
    assert round_points(2).index("random") > round_points(2).index("random_noaudit")


def test_report_ratios_pair_rounds_when_both_points_kept_them():
    from bench.report import _ratio_of

    idx = {
        ("ledgerx", "random", 4): {"rate": 150.0, "runs": [100.0, 200.0, 150.0]},
        ("ledgerx", "random_noaudit", 4): {"rate": 240.0, "runs": [200.0, 400.0, 240.0]},
        ("ledgerx", "http_me", 4): {"rate": 50.0},
        ("ledgerx", "http_balance", 4): {"rate": 40.0},
    }
    assert _ratio_of(idx, ("ledgerx", "random", 4), ("ledgerx", "random_noaudit", 4)) == 0.5
    assert _ratio_of(idx, ("ledgerx", "http_balance", 4), ("ledgerx", "http_me", 4)) == 0.8  # one run each
    assert _ratio_of(idx, ("ledgerx", "random", 4), ("ledgerx", "missing", 4)) is None


def test_http_rounds_pair_the_balance_read_with_the_trivial_read_and_transfer_once():
    from bench.suite import http_round_points

    every = (
        "http_me", "http_balance", "http_transfer_warm", "http_transfer_warm_nometrics", "http_batch", "http_batch_1000",
    )
    assert http_round_points(1) == (*every, "http_transfer")
    assert http_round_points(2) == every[::-1]
    assert http_round_points(3) == every


def test_rounds_measure_every_point_at_every_concurrency_round_by_round():
    from bench.suite import CONCURRENCIES, measure_rounds

    calls, lines = [], []

    def measure(name, c):
        calls.append((name, c))
        return {"line": f"{name} {c} {len(calls)}", "rate": float(len(calls))}

    samples = measure_rounds(2, lambda round_: ("a", "b") if round_ == 1 else ("b", "a"), measure, lines.append)
    per_round = 2 * len(CONCURRENCIES)
    assert calls[:2] == [("a", 1), ("b", 1)] and calls[per_round : per_round + 2] == [("b", 1), ("a", 1)]
    assert len(lines) == len(calls) == 2 * per_round and lines[0] == "  round 1/2: a 1 1"
    assert [r["rate"] for r in samples[("a", 1)]] == [1.0, per_round + 2.0]  # round 1 first
