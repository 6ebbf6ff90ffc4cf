"""Interleaved A/B comparisons: two or more points, alternating, round after round.

    bash bench/run ab <name> <scenario> <scenario>... [--rounds N] [--concurrency C]
                      [--duration S] [--warmup S]

Each point runs in its own process (``bench/run <scenario> <c> <s> <w>``) from the
same quiesced state (``suite.quiesce``), the order reversed every other round,
so the drift of a shared machine (±30% here) falls on every point alike. The
result, every round and the medians, goes to ``results/ab-<name>.json`` and to
the "Interleaved comparisons" section of RESULTS.md, which full runs keep (as
the cluster section): a cost like "metrics" or "events" is measured by its
pair (``random`` vs ``random_nometrics``) rather than by one full run.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.stats import parse_result_line

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
SECTION_START = "<!-- bench ab: start -->"
SECTION_END = "<!-- bench ab: end -->"
# Where a RESULTS.md without the section gets it: before the hand-written analysis.
SECTION_BEFORE = "\n## What limits LedgerX here"
# Whose CPU a point measures: its Python processes', and its PostgreSQL backends'.
CPU_KINDS = ("python", "postgres")
NAME = re.compile(r"^[a-z0-9_-]{1,40}$")


class CpuSampler:
    """The CPU time, over time, of a point's processes and of the PostgreSQL backends serving ``db_name``.

    Sampled from /proc every ``interval`` seconds while the point runs: the
    Python side is the process ``root`` and everything it started (the bench's
    workers, a gunicorn server), the database side every backend of the
    database. An exited process keeps its last reading, so each total only
    grows. ``between(t0, t1)`` is what each side used in that span
    (interpolated between samples), e.g. the measured window the point reports
    in BENCH_WINDOW_FILE, so setup and warm-up are left out.
    """

    def __init__(self, db_name: str, interval: float = 0.1):
        self.db_name = db_name
        self.interval = interval
        self.root: int | None = None
        self.series: list[tuple[float, float, float]] = []  # (unix time, python s, postgres s)
        self._python: dict[int, float] = {}
        self._postgres: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def serves(self, title: str) -> bool:
        """Whether a process title is a backend of the database: "postgres: [cluster:] <user> <db> <client> ..."."""
        words = title.split()
        if not words or words[0] != "postgres:":
            return False
        words = words[2:] if len(words) > 1 and words[1].endswith(":") else words[1:]
        return len(words) >= 2 and words[1] == self.db_name

    def sample(self) -> None:
        parents, cpu, backends = {}, {}, []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    # After the name: state, ppid, ... utime and stime are the 12th and 13th fields.
                    fields = fh.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    title = fh.read(300).decode(errors="replace")
            except OSError:
                continue
            parents[pid] = int(fields[1])
            cpu[pid] = (int(fields[11]) + int(fields[12])) / self._tick
            if self.serves(title):
                backends.append(pid)
        for pid in backends:
            self._postgres[pid] = cpu[pid]
        if self.root is not None:
            for pid in cpu:
                ancestor = pid
                while ancestor in parents and ancestor != self.root and ancestor > 1:
                    ancestor = parents[ancestor]
                if ancestor == self.root:
                    self._python[pid] = cpu[pid]
        self.series.append((time.time(), sum(self._python.values()), sum(self._postgres.values())))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> "CpuSampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _at(self, t: float) -> tuple[float, float]:
        before = [row for row in self.series if row[0] <= t]
        after = [row for row in self.series if row[0] >= t]
        if not before or not after:
            raise ValueError("the span is outside the samples")
        (t0, py0, pg0), (t1, py1, pg1) = before[-1], after[0]
        share = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
        return py0 + (py1 - py0) * share, pg0 + (pg1 - pg0) * share

    def between(self, start: float, end: float) -> tuple[float, float]:
        """CPU seconds (python, postgres) used from ``start`` to ``end``."""
        (py0, pg0), (py1, pg1) = self._at(start), self._at(end)
        return py1 - py0, pg1 - pg0


def window_read(path: Path) -> tuple[float, float]:
    """The measured window a point wrote to BENCH_WINDOW_FILE: (start, end) in unix time."""
    edges = dict(line.split() for line in path.read_text().splitlines() if line.strip())
    return float(edges["start"]), float(edges["end"])


def _point(scenario: str, concurrency: int, duration: float, warmup: float, log) -> dict:
    from bench import env, pgbench
    from bench.suite import quiesce

    if scenario == "tpcb" and not pgbench.pgbench_initialized():
        pgbench.pgbench_init(log=log)  # its database must exist before it is quiesced
    quiesce(scenario)
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        window_file = Path(tmp) / "window"
        with CpuSampler(env.BENCH_DB) as cpu:
            proc = subprocess.Popen(
                ["bash", str(BENCH / "run"), scenario, str(concurrency), str(duration), str(warmup)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "BENCH_WINDOW_FILE": str(window_file)},
            )
            cpu.root = proc.pid
            stdout, stderr = proc.communicate()
        lines = [line for line in stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"{scenario} failed (exit {proc.returncode}): {stderr[-2000:]}")
        result = parse_result_line(lines[-1])
        ops = max(1.0, result["rate"] * duration)
        if window_file.exists():  # the SQL-only points (pgbench) write no window
            python_s, postgres_s = cpu.between(*window_read(window_file))
            result["python_cpu_ms_per_op"] = python_s * 1000 / ops
            result["postgres_cpu_ms_per_op"] = postgres_s * 1000 / ops
            log(
                f"    {lines[-1]}  (cpu ms/op in the window: python {result['python_cpu_ms_per_op']:.3f}, "
                f"postgres {result['postgres_cpu_ms_per_op']:.3f})"
            )
        else:
            log(f"    {lines[-1]}")
    return result


def run_ab(name: str, scenarios: list[str], *, rounds: int, concurrency: int, duration: float, warmup: float, log) -> dict:
    """Measure ``scenarios`` in ``rounds`` interleaved rounds; saves and returns the run."""
    if not NAME.match(name):
        raise SystemExit("the comparison's name: 1-40 of a-z, 0-9, _ and -")
    if len(scenarios) < 2 or len(set(scenarios)) != len(scenarios):
        raise SystemExit("give at least two different scenarios; the first is the baseline of the ratios")
    rates: dict[str, list[float]] = {s: [] for s in scenarios}
    p99s: dict[str, list[float]] = {s: [] for s in scenarios}
    cpu: dict[str, dict[str, list[float]]] = {kind: {s: [] for s in scenarios} for kind in CPU_KINDS}
    for round_ in range(1, rounds + 1):
        order = scenarios if round_ % 2 else scenarios[::-1]
        log(f"==> round {round_}/{rounds}: {', '.join(order)}")
        for scenario in order:
            result = _point(scenario, concurrency, duration, warmup, log)
            rates[scenario].append(result["rate"])
            p99s[scenario].append(result["p99_ms"])
            for kind in CPU_KINDS:
                if f"{kind}_cpu_ms_per_op" in result:
                    cpu[kind][scenario].append(result[f"{kind}_cpu_ms_per_op"])
    run = summary(name, scenarios, rates, p99s, cpu, concurrency=concurrency, duration=duration, warmup=warmup)
    save(run)
    log(f"==> wrote {RESULTS / f'ab-{name}.json'} and the comparisons section of {BENCH / 'RESULTS.md'}")
    return run


def summary(name, scenarios, rates, p99s, cpu=None, *, concurrency, duration, warmup) -> dict:
    """The saved form of a comparison: every round's rate per scenario, the medians and the ratios."""
    base = scenarios[0]
    rounds = len(rates[base])
    return {
        "name": name,
        "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True).stdout.strip(),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "concurrency": concurrency,
        "duration_s": duration,
        "warmup_s": warmup,
        "rounds": rounds,
        "baseline": base,
        "points": {
            s: {
                "rates": rates[s],
                "median": statistics.median(rates[s]),
                "p99_median_ms": statistics.median(p99s[s]),
                # Each round's ratio to the baseline's rate of the same round, and their median.
                "round_ratios": [r / b for r, b in zip(rates[s], rates[base])],
                "ratio_of_medians": statistics.median(rates[s]) / statistics.median(rates[base]),
                **{
                    f"{kind}_cpu_ms_per_op": cpu[kind][s] for kind in CPU_KINDS if cpu and cpu.get(kind, {}).get(s)
                },
            }
            for s in scenarios
        },
    }


def save(run: dict) -> None:
    """Write ``results/ab-<name>.json`` and rewrite RESULTS.md's comparisons section."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"ab-{run['name']}.json").write_text(json.dumps(run, indent=2))
    results_md = BENCH / "RESULTS.md"
    results_md.write_text(with_section(results_md.read_text() if results_md.exists() else "", section_markdown()))


def comparison_markdown(run: dict) -> str:
    base = run["baseline"]
    lines = [
        f"### `{run['name']}`: {', '.join(f'`{s}`' for s in run['points'])} at c={run['concurrency']}",
        "",
        f"{run['rounds']} interleaved rounds of {run['duration_s']:g} s (+{run['warmup_s']:g} s warm-up) per point, "
        f"{run['finished_at']}, commit {run['commit']}; `{run['uptime']}`.",
        "",
        f"| scenario | median /s | every round | p99 ms (median) | median of round ratios to `{base}` | ratio of medians "
        "| Python CPU ms/op | PostgreSQL CPU ms/op |",
        "| --- | ---: | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for scenario, point in run["points"].items():
        rounds = ", ".join(f"{r:.0f}" for r in point["rates"])
        cpu = [
            f"{statistics.median(point[key]):.3f} ({', '.join(f'{c:.3f}' for c in point[key])})"
            if point.get(key) else "not measured"
            for key in (f"{kind}_cpu_ms_per_op" for kind in CPU_KINDS)
        ]
        lines.append(
            f"| `{scenario}` | {point['median']:.1f} | {rounds} | {point['p99_median_ms']:.1f} | "
            f"{statistics.median(point['round_ratios']):.3f} | {point['ratio_of_medians']:.3f} | {' | '.join(cpu)} |"
        )
    return "\n".join(lines)


def section_markdown() -> str | None:
    """Every saved comparison (results/ab-*.json), newest first; None without one."""
    runs = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("ab-*.json"))]
    if not runs:
        return None
    runs.sort(key=lambda run: run["finished_at"], reverse=True)
    parts = [
        "## Interleaved comparisons (`bash bench/run ab`)",
        "",
        "A cost measured by its pair, point against point in alternating order, each point in its own "
        "process from a quiesced database; the first scenario of each is the baseline of its ratios.",
    ]
    parts += ["", *(comparison_markdown(run) + "\n" for run in runs)]
    return "\n".join(parts).rstrip()


def saved_section() -> str | None:
    section = section_markdown()
    return None if section is None else f"{SECTION_START}\n{section}\n{SECTION_END}"


def with_section(document: str, section: str | None) -> str:
    """``document`` with the comparisons section (between its markers) replaced, or inserted before the analysis."""
    if section is None:
        return document
    block = f"{SECTION_START}\n{section.rstrip()}\n{SECTION_END}"
    if SECTION_START in document and SECTION_END in document:
        head, rest = document.split(SECTION_START, 1)
        return head + block + rest.split(SECTION_END, 1)[1]
    if SECTION_BEFORE in document:
        head, tail = document.split(SECTION_BEFORE, 1)
        return f"{head.rstrip()}\n\n{block}\n{SECTION_BEFORE}{tail}"
    return f"{document.rstrip()}\n\n{block}\n"


def main(args: list[str], log) -> int:
    options = {"--rounds": 5, "--concurrency": 4, "--duration": 20.0, "--warmup": 5.0}
    positional: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in options:
            value = next(it, None)
            if value is None:
                raise SystemExit(f"{arg} needs a value")
            options[arg] = type(options[arg])(value)
        else:
            positional.append(arg)
    if len(positional) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ledgerx.settings")
    run_ab(
        positional[0], positional[1:],
        rounds=options["--rounds"], concurrency=options["--concurrency"],
        duration=options["--duration"], warmup=options["--warmup"], log=log,
    )
    return 0
