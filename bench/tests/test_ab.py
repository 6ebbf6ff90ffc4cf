"""The pure parts of ``bench/ab.py``: the summary of the rounds, its table and the RESULTS.md section."""

import pytest

from bench import ab


def _run():
    return ab.summary(
        "metrics",
        ["random_nometrics", "random"],
        {"random_nometrics": [500.0, 520.0, 480.0], "random": [490.0, 530.0, 460.0]},
        {"random_nometrics": [10.0, 12.0, 11.0], "random": [12.0, 13.0, 14.0]},
        concurrency=4,
        duration=20,
        warmup=5,
    )


def test_the_summary_keeps_every_round_and_pairs_each_with_the_baselines_same_round():
    run = _run()
    point = run["points"]["random"]
    assert run["baseline"] == "random_nometrics" and run["rounds"] == 3
    assert point["rates"] == [490.0, 530.0, 460.0]
    assert point["median"] == 490.0
    assert point["round_ratios"] == pytest.approx([0.98, 530 / 520, 460 / 480])
    assert point["ratio_of_medians"] == pytest.approx(490 / 500)
    assert run["points"]["random_nometrics"]["round_ratios"] == [1.0, 1.0, 1.0]


def test_the_table_shows_every_round_and_both_ratios():
    table = ab.comparison_markdown(_run())
    assert "| `random` | 490.0 | 490, 530, 460 | 13.0 | 0.980 | 0.980 | not measured | not measured |" in table
    assert "c=4" in table and "3 interleaved rounds" in table


def test_the_section_replaces_its_old_self_or_goes_before_the_analysis():
    fresh = ab.with_section("# Results\n\n## What limits LedgerX here\n\ntext\n", "## Interleaved comparisons\n\nA")
    assert fresh.index(ab.SECTION_START) < fresh.index("## What limits LedgerX here")
    again = ab.with_section(fresh, "## Interleaved comparisons\n\nB")
    assert again.count(ab.SECTION_START) == 1 and "\nB\n" in again and "\nA\n" not in again
    assert ab.with_section("unchanged", None) == "unchanged"


def test_names_and_scenarios_are_checked_before_anything_runs():
    with pytest.raises(SystemExit):
        ab.run_ab("Bad Name", ["random", "hot"], rounds=1, concurrency=1, duration=1, warmup=0, log=print)
    with pytest.raises(SystemExit):
        ab.run_ab("ok", ["random", "random"], rounds=1, concurrency=1, duration=1, warmup=0, log=print)


def test_the_cpu_per_op_is_kept_and_shown_when_measured():
    run = ab.summary(
        "x", ["a", "b"], {"a": [1.0, 2.0], "b": [1.0, 2.0]}, {"a": [1.0, 1.0], "b": [1.0, 1.0]},
        {"python": {"a": [0.5, 0.7], "b": [0.6, 0.9]}, "postgres": {"a": [1.0, 1.0], "b": [2.0, 3.0]}},
        concurrency=1, duration=1, warmup=0,
    )
    assert run["points"]["b"]["python_cpu_ms_per_op"] == [0.6, 0.9]
    assert "| 0.750 (0.600, 0.900) | 2.500 (2.000, 3.000) |" in ab.comparison_markdown(run)


def test_backend_titles_are_read_with_or_without_a_cluster_name():
    cpu = ab.CpuSampler("ledgerx_bench")
    assert cpu.serves("postgres: 15/main: postgres ledgerx_bench 127.0.0.1(5432) idle")
    assert cpu.serves("postgres: postgres ledgerx_bench [local] SELECT")
    assert not cpu.serves("postgres: 15/main: postgres ledgerx_bench_h1 127.0.0.1(5432) idle")
    assert not cpu.serves("postgres: 15/main: checkpointer")
    assert not cpu.serves("python -m bench random 4 20 5")


def test_the_cpu_of_a_span_is_interpolated_between_samples():
    cpu = ab.CpuSampler("x")
    cpu.series = [(10.0, 1.0, 5.0), (11.0, 2.0, 5.5), (12.0, 4.0, 6.5)]
    assert cpu.between(10.5, 11.5) == pytest.approx((1.5, 0.75))
    with pytest.raises(ValueError):
        cpu.between(9.0, 11.0)


def test_the_sampler_counts_the_cpu_of_the_process_it_follows_and_of_its_children(tmp_path):
    import subprocess
    import sys
    import time

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
    with ab.CpuSampler("no_such_database_here", interval=0.05) as cpu:
        proc = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"])
        cpu.root = proc.pid
        started = time.time()
        proc.wait()
    python_s, postgres_s = cpu.between(started, cpu.series[-1][0])
    assert python_s > 0.3 and postgres_s == 0


def test_a_window_file_gives_the_measured_span(tmp_path):
    path = tmp_path / "window"
    path.write_text("start 100.5\nend 120.25\n")
    assert ab.window_read(path) == (100.5, 120.25)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_sampler_sees_the_work_of_a_backend_of_its_database():
    import time

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (name,) = cursor.fetchone()
        with ab.CpuSampler(name, interval=0.05) as cpu:
            started = time.time()
            cursor.execute("SELECT count(*) FROM generate_series(1, 3000000)")
            cursor.fetchone()
            cpu.sample()  # before the backend goes idle
    assert cpu.between(started, cpu.series[-1][0])[1] > 0.05
