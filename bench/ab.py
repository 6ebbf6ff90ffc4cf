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
import resource
import statistics
import subprocess
import sys
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


class BackendCpu:
    """The CPU time of the PostgreSQL backends serving ``db_name``, summed over every backend seen.

    Sampled from /proc while a point runs (a backend's counters vanish with it
    when the point's connections close), so it only sees backends on this
    machine; ``None`` where /proc is not readable.
    """

    def __init__(self, db_name: str, interval: float = 0.2):
        self.db_name = db_name
        self.interval = interval
        self.last: dict[int, float] = {}
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

    def _sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    if not self.serves(fh.read(300).decode(errors="replace")):
                        continue
                with open(f"/proc/{entry.name}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # utime and stime are the 14th and 15th fields of stat (the 12th and 13th after the name).
            self.last[int(entry.name)] = (int(fields[11]) + int(fields[12])) / self._tick

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "BackendCpu":
        self._sample()
        self.start = dict(self.last)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def seconds(self) -> float:
        """CPU seconds the backends used while sampled (those alive at the start count from then)."""
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in self.last.items())


def _point(scenario: str, concurrency: int, duration: float, warmup: float, log) -> dict:
    from bench import env
    from bench.suite import quiesce

    quiesce(scenario)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with BackendCpu(env.BENCH_DB) as backends:
        out = subprocess.run(
            ["bash", str(BENCH / "run"), scenario, str(concurrency), str(duration), str(warmup)],
            capture_output=True, text=True,
        )
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{scenario} failed (exit {out.returncode}): {out.stderr[-2000:]}")
    result = parse_result_line(lines[-1])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The CPU of the point's Python processes (the bench's, and a gunicorn server's, which it
    # reaps), not of PostgreSQL's: setup and warm-up included, per op of the measured window.
    # Steadier than the rate, which commit latency and the neighbours' load move.
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ops = max(1.0, result["rate"] * duration)
    result["python_cpu_ms_per_op"] = cpu_s * 1000 / ops
    result["postgres_cpu_ms_per_op"] = backends.seconds() * 1000 / ops
    log(
        f"    {lines[-1]}  (cpu ms/op: python {result['python_cpu_ms_per_op']:.3f}, "
        f"postgres {result['postgres_cpu_ms_per_op']:.3f})"
    )
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
