"""bench/RESULTS.md and bench/results/transfers.png from one run's results (results/latest.json)."""

from __future__ import annotations

from pathlib import Path

from bench.stats import paired_ratio, ratio

BENCH = Path(__file__).resolve().parent
CONCURRENCIES = (1, 4, 16)


def _index(results: list[dict]) -> dict:
    return {(r["system"], r["scenario"], r["concurrency"]): r for r in results}


def _rate(idx: dict, system: str, scenario: str, c: int) -> float | None:
    row = idx.get((system, scenario, c))
    return row["rate"] if row else None


def _ratio_of(idx: dict, numerator: tuple, denominator: tuple, *, paired: bool = True) -> float | None:
    """The ratio of two points, each ``(system, scenario, concurrency)``: paired over rounds when it can be.

    Points measured in the same rounds (the service and pgbench-driven points
    keep every round's rate, in round order) give the median of their
    round-by-round ratios (``bench.stats.paired_ratio``); otherwise (HTTP points,
    single-round runs) the ratio of the two rates. ``paired=False``: the ratio of
    the two medians, for points of different phases of the run (an HTTP point
    against a service point), whose round k is not measured beside the other's.
    """
    a, b = idx.get(numerator), idx.get(denominator)
    if not a or not b:
        return None
    runs_a, runs_b = a.get("runs") or [], b.get("runs") or []
    if paired and len(runs_a) > 1 and len(runs_a) == len(runs_b):
        return paired_ratio(runs_a, runs_b)
    return ratio(a["rate"], b["rate"])


# An answer within 1 s to one client, for the largest batch one request may carry.
BIG_BATCH_P99_MS = 1000.0
# Flat memory: a process applying 1000-item batches peaks within this factor of one applying 100-item ones.
BATCH_MEMORY_FACTOR = 1.2


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def targets(run: dict) -> list[dict]:
    """Each target with its measured ratio and met / not met (None: not measured)."""
    idx = _index(run["results"])
    L = lambda s, c: _rate(idx, "ledgerx", s, c)  # noqa: E731
    R = lambda a, b: _ratio_of(idx, a, b)  # noqa: E731
    pg4 = ("pgbench", "tpcb", 4)
    out = []

    def add(number, text, value, threshold, higher_is_better=True, note=""):
        met = None if value is None else (value >= threshold if higher_is_better else value <= threshold)
        out.append({"n": number, "target": text, "measured": value, "met": met, "note": note})

    add(1, "service `random` c=4 >= 0.8 x pgbench c=4", R(("ledgerx", "random", 4), pg4), 0.8)
    add(2, "`hot` c=4 >= 0.45 x pgbench c=4", R(("ledgerx", "hot", 4), pg4), 0.45)
    add(2, "`hot` c=16 >= 0.8 x `hot` c=4 (falls <= 20%)", R(("ledgerx", "hot", 16), ("ledgerx", "hot", 4)), 0.8)
    for c in CONCURRENCIES:
        add(3, f"`deposit` >= 0.8 x `random` (c={c})", R(("ledgerx", "deposit", c), ("ledgerx", "random", c)), 0.8)
    add(3, "`conversion` c=4 >= 0.8 x `random` c=4", R(("ledgerx", "conversion", 4), ("ledgerx", "random", 4)), 0.8)
    for c in CONCURRENCIES:
        kept = R(("ledgerx", "random", c), ("ledgerx", "random_noaudit", c))
        add(4, f"audit costs <= 15% on `random` (c={c}; 1 - random/random_noaudit)", None if kept is None else 1 - kept, 0.15, False)
    ceiling = run.get("bcrypt", {}).get("ceiling_per_s")
    for c in (4, 16):
        add(5, f"`http_transfer` >= 0.85 x bcrypt ceiling (c={c})", ratio(L("http_transfer", c), ceiling), 0.85)
    add(5, "`http_transfer_warm` c=4 >= 0.5 x `http_me` c=4", R(("ledgerx", "http_transfer_warm", 4), ("ledgerx", "http_me", 4)), 0.5)
    add(5, "`http_transfer_warm` c=16 >= 0.8 x c=4", R(("ledgerx", "http_transfer_warm", 16), ("ledgerx", "http_transfer_warm", 4)), 0.8)
    for c in CONCURRENCIES:
        add(5, f"`http_balance` >= 0.6 x `http_me` (c={c})", R(("ledgerx", "http_balance", c), ("ledgerx", "http_me", c)), 0.6)
    for scenario, bare in (("random", "random_nometrics"), ("http_transfer_warm", "http_transfer_warm_nometrics")):
        kept = R(("ledgerx", scenario, 4), ("ledgerx", bare, 4))
        add(8, f"metrics cost <= 3% on `{scenario}` (c=4; 1 - {scenario}/{bare})", None if kept is None else 1 - kept, 0.03, False)
    lx = lambda s, c: ("ledgerx", s, c)  # noqa: E731
    add(9, "`batch_random` c=4 >= 2.0 x pgbench c=4 (transfers/s)", R(lx("batch_random", 4), pg4), 2.0)
    add(9, "`batch_hot` c=4 >= 1.5 x pgbench c=4 (transfers/s)", R(lx("batch_hot", 4), pg4), 1.5)
    add(9, "`batch_hot` c=16 >= 0.8 x `batch_hot` c=4", R(lx("batch_hot", 16), lx("batch_hot", 4)), 0.8)
    add(
        9,
        "`http_batch` c=4 >= 0.6 x `batch_random` c=4 (transfers/s; ratio of the medians: different phases)",
        _ratio_of(idx, lx("http_batch", 4), lx("batch_random", 4), paired=False),
        0.6,
    )
    add(9, "`hold_commit` c=4 >= 0.45 x `random` c=4", R(lx("hold_commit", 4), lx("random", 4)), 0.45)
    for scenario in ("batch_1000", "http_batch_1000"):
        row = idx.get(lx(scenario, 1))
        add(
            9,
            f"`{scenario}` (1000 transfers, atomic) c=1 p99 <= {BIG_BATCH_P99_MS:.0f} ms",
            row["p99_ms"] if row else None,
            BIG_BATCH_P99_MS,
            False,
            f"p50 {row['p50_ms']:.0f} ms over {row.get('completed', 0)} batches in the window" if row else "",
        )
    from bench.batch_memory import peak_ratio

    add(
        9,
        f"peak RSS of a process applying 1000-item batches <= {BATCH_MEMORY_FACTOR} x 100-item ones",
        peak_ratio(run.get("batch_memory")),
        BATCH_MEMORY_FACTOR,
        False,
    )
    scale = run.get("scale") or {}
    st = scale.get("statement", {})
    if "small" in st and "big" in st:
        for page in ("page1", "page50"):
            add(
                6,
                f"statement {page} p50 at 10^6 postings <= 1.3 x at 10^3",
                ratio(st["big"][f"{page}_p50_ms"], st["small"][f"{page}_p50_ms"]),
                1.3,
                False,
            )
    for name, lat in ((scale.get("admin_pages") or {}).get("pages") or {}).items():
        add(6, f"admin `{name}` p50 <= 300 ms at 10^6 postings (server time)", lat["p50_ms"], 300.0, False)
    ver = scale.get("verify", [])
    if len(ver) >= 2:
        add(6, "verify_ledger peak memory at 10^6 <= 1.2 x at 10^5", ratio(ver[1]["max_rss_kb"], ver[0]["max_rss_kb"]), 1.2, False)
    bad = {}
    for r in run["results"]:
        for kind, n in (r.get("failures") or {}).items():
            if kind in ("deadlock", "serialization_failure"):
                bad[f"{r['scenario']} c={r['concurrency']}"] = n
    add(7, "zero deadlock / serialization failures in every scenario", float(sum(bad.values())), 0, False,
        ", ".join(f"{k}: {v}" for k, v in bad.items()))
    checks = [run.get("verify_bench", {}).get("ok")] + [v.get("ok") for v in ver] + [
        (scale.get("verify_final") or {}).get("ok")
    ]
    checks = [c for c in checks if c is not None]
    add(7, "verify_ledger passes at the end (bench and scale databases)", 1.0 if checks and all(checks) else 0.0, 1.0)
    return out


def chart(run: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = _index(run["results"])
    series = [
        ("pgbench", "tpcb", "pgbench TPC-B", "black", "-"),
        ("sql", "sql_random", "movement function via pgbench (no Python)", "gray", "--"),
        ("sql", "sql_hot", "movement function via pgbench, hot account", "tab:red", ":"),
        ("ledgerx", "random", "LedgerX random", "tab:blue", "-"),
        ("ledgerx", "hot", "LedgerX hot", "tab:red", "-"),
        ("ledgerx", "deposit", "LedgerX deposit", "tab:green", "-"),
        ("ledgerx", "hold_commit", "LedgerX hold+commit", "tab:purple", "-"),
        ("ledgerx", "random_noaudit", "LedgerX random, no audit", "tab:blue", ":"),
        ("ledgerx", "batch_random", "LedgerX batches of 100 (transfers/s)", "tab:cyan", "-"),
        ("ledgerx", "batch_hot", "LedgerX batches of 100 to the hot account", "tab:pink", "-"),
        ("ledgerx", "http_batch", "LedgerX HTTP batches of 100 (PIN proven before)", "tab:cyan", "--"),
        ("ledgerx", "http_transfer", "LedgerX HTTP transfer (PIN)", "tab:orange", "--"),
        ("ledgerx", "http_transfer_warm", "LedgerX HTTP transfer (PIN proven before)", "tab:orange", "-"),
    ]
    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    for system, scenario, label, color, style in series:
        xs = [c for c in CONCURRENCIES if (system, scenario, c) in idx]
        if xs:
            ys = [idx[(system, scenario, c)]["rate"] for c in xs]
            ax.plot(xs, ys, style, marker="o", color=color, label=label)
    ceiling = run.get("bcrypt", {}).get("ceiling_per_s")
    if ceiling:
        ax.axhline(ceiling, color="tab:orange", linewidth=0.8, alpha=0.6, label=f"bcrypt ceiling ({ceiling:.1f}/s)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(list(CONCURRENCIES), [str(c) for c in CONCURRENCIES])
    ax.set_xlabel("concurrency (client processes, closed loop)")
    ax.set_ylabel("transfers / s (log scale)")
    m = run["machine"]
    ax.set_title(f"LedgerX vs pgbench, same run - {m['date']} - {m['nproc']} cores - commit {m['commit']}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _profile() -> dict:
    import json

    path = BENCH / "results" / "profile.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _verdict(rows: list[dict], names: list[str]) -> str:
    """"Met" / "Not met" / "met for ..., not for ..." over some rows of ``targets``, named by ``names``."""
    met = [n for t, n in zip(rows, names) if t["met"]]
    missed = [n for t, n in zip(rows, names) if t["met"] is False]
    if missed and not met:
        return "Not met in this run"
    if met and not missed:
        return "Met in this run"
    return f"In this run met for {', '.join(met)}; not met for {', '.join(missed)}"


def analysis_values(run: dict) -> dict:
    """The numbers templates/analysis.md cites, from this run (latest.json) and the last profile (profile.json)."""
    idx = _index(run["results"])
    L = lambda s, c: _rate(idx, "ledgerx", s, c)  # noqa: E731
    prof = _profile()
    cpu = prof.get("cpu", {})
    v: dict = {"PROFILE_TIME": prof.get("at", "n/a")}
    # "Met at ..." sentences: the same verdicts as the Targets table, so the prose cannot disagree with it.
    verdicts = targets(run)
    v["AUDIT_MET"] = _verdict([t for t in verdicts if t["n"] == 4], [f"c={c}" for c in CONCURRENCIES])
    v["HOT_MET"] = _verdict(
        [t for t in verdicts if t["n"] == 2], ["c=4 >= 0.45 x pgbench", "the fall from c=4 to c=16 <= 20%"]
    )

    def total(name):
        row = cpu.get(name)
        return row["client_cpu_ms"] + row["server_cpu_ms"] if row else None

    for key, name in (("PG", "pgbench"), ("R", "random")):
        row = cpu.get(name)
        if row:
            v[f"{key}_CLIENT"] = f"{row['client_cpu_ms']:.2f}"
            v[f"{key}_SERVER"] = f"{row['server_cpu_ms']:.2f}"
            v[f"{key}_TOTAL"] = f"{total(name):.2f}"
            v[f"{key}_CEIL"] = f"{2000 / total(name):,.0f}"
    if total("random") and total("pgbench"):
        v["R_X_PG"] = f"{total('random') / total('pgbench'):.1f}"
    r4, p4 = L("random", 4), _rate(idx, "pgbench", "tpcb", 4)
    if r4 is not None:
        v["RANDOM4"] = f"{r4:.0f}"
        if total("random"):
            v["RANDOM4_PCT"] = f"{r4 / (2000 / total('random')):.0%}"
    if p4:
        v["TARGET1"] = f"{0.8 * p4:,.0f}"
        v["PG4"] = f"{p4:,.0f}"
    sql4 = _rate(idx, "sql", "sql_random", 4)
    if sql4:
        v["SQL4"] = f"{sql4:,.0f}"
    sh4 = _rate(idx, "sql", "sql_hot", 4)
    if sh4:
        v["SQLHOT4"] = f"{sh4:,.0f}"
    # Ratios: paired over rounds, like the Ratios and Targets tables (``_ratio_of``).
    lx = lambda s, c: ("ledgerx", s, c)  # noqa: E731
    pg4, sqlr4, sqlh4 = ("pgbench", "tpcb", 4), ("sql", "sql_random", 4), ("sql", "sql_hot", 4)
    shares = {
        "SQL4_RATIO": (sqlr4, pg4),
        "R_SQL_RATIO": (lx("random", 4), sqlr4),
        "RANDOM4_RATIO": (lx("random", 4), pg4),
        "SQLHOT4_PG": (sqlh4, pg4),
        "SQLHOT4_VS_SQL4": (sqlh4, sqlr4),
        "HOT4_VS_SQLHOT4": (lx("hot", 4), sqlh4),
        "HOT4_PG": (lx("hot", 4), pg4),
        "HOT4_RATIO": (lx("hot", 4), lx("random", 4)),
        "HOT16_VS_RANDOM16": (lx("hot", 16), lx("random", 16)),
    }
    falls = {
        "SQLHOT_FALL": (("sql", "sql_hot", 16), sqlh4),
        "HOT_FALL": (lx("hot", 16), lx("hot", 4)),
        "RANDOM_FALL": (lx("random", 16), lx("random", 4)),
    }
    for key, (numerator, denominator) in shares.items():
        if (value := _ratio_of(idx, numerator, denominator)) is not None:
            v[key] = f"{value:.2f}"
    for key, (numerator, denominator) in falls.items():
        if (value := _ratio_of(idx, numerator, denominator)) is not None:
            v[key] = f"{1 - value:.0%}"
    hot16 = idx.get(("ledgerx", "hot", 16))
    if hot16:
        v["HOT16_P99"] = f"{hot16['p99_ms']:.0f}"
    with_audit, no_seal, no_audit = total("random"), total("random_nosealer"), total("random_noaudit")
    costs = [_ratio_of(idx, lx("random", c), lx("random_noaudit", c)) for c in CONCURRENCIES]
    tput = "/".join("n/a" if x is None else f"{1 - x:.0%}" for x in costs)
    v["AUDIT_TPUT"] = f"{tput.replace('/', ', ')} at c=1, 4 and 16"
    if with_audit and no_audit:
        v["AUDIT_COST"] = (
            f"{1 - no_audit / with_audit:.0%} of a transfer's CPU; throughput at c=1/4/16 is {tput} "
            f"below `random_noaudit`"
        )
        v["NA_TOTAL"] = f"{no_audit:.2f}"
    if with_audit and no_seal and no_audit:
        v["NS_TOTAL"] = f"{no_seal:.2f}"
        v["INSERT_MS"] = f"{no_seal - no_audit:.2f}"
        v["INSERT_PCT"] = f"{(no_seal - no_audit) / with_audit:.0%}"
        v["SEAL_MS"] = f"{with_audit - no_seal:.2f}"
        v["SEAL_PCT"] = f"{(with_audit - no_seal) / with_audit:.0%}"
    ceiling = (run.get("bcrypt") or {}).get("ceiling_per_s")
    parts = []
    for c in CONCURRENCIES:
        t = L("http_transfer", c)
        if t is not None and ceiling:
            parts.append(f"{t:.1f}/s at c={c} ({t / ceiling:.2f} x)")
    if parts and ceiling:
        b = run["bcrypt"]
        v["HTTP_TEXT"] = (
            f"`http_transfer` (PIN checked; one bcrypt cost-12 check = {b['seconds'] * 1000:.0f} ms of a core, "
            f"so the ceiling is {ceiling:.2f}/s on {run['machine']['nproc']} cores): " + ", ".join(parts) + "."
        )
    v["BATCH_TEXT"] = _batch_text(run, idx)
    sd = (run.get("scale") or {}).get("seed_demo") or {}
    if sd.get("available"):
        bulk = sd.get("bulk_phase_postings_per_s")
        v["SEED_TEXT"] = (
            f"wrote {sd['postings']:,} postings in {sd['seconds']:.0f} s ({sd['rate']:,.0f} postings/s overall"
            + (f", {bulk:,.0f}/s in its bulk phase" if bulk else "")
            + f"; `verify_ledger` {'passed' if sd.get('verify_ok') else 'FAILED'} on them)"
        )
    elif sd:
        v["SEED_TEXT"] = "was not measured (" + sd.get("summary", "") + ")"
    return v


def _batch_text(run: dict, idx: dict) -> str:
    """The batch points of this run in one paragraph of the reading (the Targets table has the verdicts)."""
    from bench.batch_memory import peak_ratio

    lx = lambda s, c: ("ledgerx", s, c)  # noqa: E731
    parts = []
    for scenario, denominator, label in (
        ("batch_random", ("pgbench", "tpcb", 4), "pgbench"),
        ("batch_hot", ("pgbench", "tpcb", 4), "pgbench"),
        ("batch_random", lx("random", 4), "`random`"),
    ):
        row, value = idx.get(lx(scenario, 4)), _ratio_of(idx, lx(scenario, 4), denominator)
        if row and value is not None:
            parts.append(f"`{scenario}` c=4 {row['rate']:,.0f} transfers/s = {value:.2f} x {label}")
    value = _ratio_of(idx, lx("http_batch", 4), lx("batch_random", 4), paired=False)
    if value is not None:
        parts.append(f"`http_batch` c=4 {idx[lx('http_batch', 4)]['rate']:,.0f} transfers/s = {value:.2f} x `batch_random`")
    for scenario in ("batch_1000", "http_batch_1000"):
        row = idx.get(lx(scenario, 1))
        if row:
            parts.append(f"`{scenario}` at c=1 p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms")
    memory = (run.get("batch_memory") or {}).get("sizes") or {}
    if "100" in memory and "1000" in memory:
        parts.append(
            f"peak RSS {memory['1000']['peak_kb'] / 1024:.0f} MiB with 1000 items against "
            f"{memory['100']['peak_kb'] / 1024:.0f} MiB with 100 ({peak_ratio(run['batch_memory']):.2f} x)"
        )
    if not parts:
        return "This run measured no batch point."
    return "In this run: " + "; ".join(parts) + "."


def throughput_row(r: dict, *, system: bool = True) -> str:
    """One point's row of a throughput table: rate (median), every round's, p50, p99, completed, failures."""
    fails = ", ".join(f"{k}: {v}" for k, v in sorted((r.get("failures") or {}).items())) or "0"
    rounds = ", ".join(f"{rate:.0f}" for rate in r.get("runs", [r["rate"]]))
    head = f"| {r['system']} " if system else ""
    return (
        f"{head}| {r['scenario']} | {r['concurrency']} | {r['rate']:.1f} | {rounds} | {r['p50_ms']:.2f} | "
        f"{r['p99_ms']:.2f} | {r.get('completed', '')} | {fails} |"
    )


def results_markdown(run: dict) -> str:
    m = run["machine"]
    idx = _index(run["results"])
    lines = [
        "# Benchmark results",
        "",
        "Produced by `bash bench/run` (see bench/README.md). Ratios are within this one run on one machine;",
        "absolute numbers on shared 2-core machines drift by +-30%.",
        "",
        "| run | value |",
        "| --- | --- |",
        f"| date (UTC) | {m['date']} |",
        f"| mode | {run['mode']} (measure {run['duration_s']} s after {run['warmup_s']} s warm-up per point; "
        + (
            f"service and pgbench points: median of {run['repeats']} rounds, HTTP: "
            + (
                f"http_me and http_balance median of {run['repeats']} rounds, http_transfer one run"
                if len((idx.get(("ledgerx", "http_me", 1)) or {}).get("runs") or []) > 1
                else "one run per point"
            )
            if run.get("repeats", 1) > 1
            else "one run per point"
        )
        + (
            f"; http_transfer {run['http_transfer_window']['duration_s']} s after {run['http_transfer_window']['warmup_s']} s"
            if run.get("http_transfer_window")
            else ""
        )
        + ") |",
        f"| machine | {m['nproc']} cores (`nproc`), memory {m['mem_total']} total / {m['mem_available']} available (`free -h`) |",
        f"| PostgreSQL | {m['postgres']} |",
        f"| commit | `{m['commit']}` |",
        f"| before each point | {run.get('before_each_point', 'nothing')} |",
        "",
        "## Throughput (closed loop, transfers/s; latencies in ms)",
        "",
        "| system | scenario | c | per s (median) | every round | p50 ms | p99 ms | completed | failed (by kind) |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    lines += [throughput_row(r) for r in run["results"]]
    if any(r.get("transfers_per_op") for r in run["results"]):
        lines += [
            "",
            "Batch points (`batch_*`, `http_batch*`): the rate is in transfers/s (batches/s x items per batch),",
            "p50/p99 are per batch and `completed` counts batches.",
        ]
    memory = run.get("batch_memory") or {}
    if memory.get("sizes"):
        lines += [
            "",
            f"Peak memory of a process applying batches (`bench/batch_memory.py`: a fresh process per size, "
            f"one warming batch then {memory['batches']}; `VmHWM`):",
            "",
            "| items per batch | peak RSS MiB | after the warming batch MiB | before any batch MiB | batch p50 ms |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for items, row in memory["sizes"].items():
            lines.append(
                f"| {items} | {row['peak_kb'] / 1024:.1f} | {row['warmed_kb'] / 1024:.1f} | "
                f"{row['start_kb'] / 1024:.1f} | {row['p50_ms']:.0f} |"
            )
    b = run.get("bcrypt")
    if b:
        lines += [
            "",
            f"bcrypt cost 12 PIN check: {b['seconds'] * 1000:.0f} ms of one core (median of {b['samples']}); "
            f"ceiling = {m['nproc']} cores / that = **{b['ceiling_per_s']:.2f} PIN-checked transfers/s**.",
        ]
    lines += [
        "",
        "## Ratios by concurrency",
        "",
        "Two points measured in the same rounds: the median of their round-by-round ratios (a drift of the",
        "machine between rounds cancels out); otherwise the ratio of the two rates. The targets below use the same ratios.",
        "",
        "| ratio | c=1 | c=4 | c=16 |",
        "| --- | ---: | ---: | ---: |",
    ]
    L = lambda s, c: _rate(idx, "ledgerx", s, c)  # noqa: E731

    def paired(numerator: tuple, denominator: tuple):
        """A row's cell function: the ratio of two points, each ``(system, scenario)``, at concurrency c."""
        return lambda c: _ratio_of(idx, (*numerator, c), (*denominator, c))

    lx = lambda s: ("ledgerx", s)  # noqa: E731
    pg, sql_random, sql_hot = ("pgbench", "tpcb"), ("sql", "sql_random"), ("sql", "sql_hot")
    rows = [
        ("random / pgbench", paired(lx("random"), pg)),
        ("hot / pgbench", paired(lx("hot"), pg)),
        ("sql_random / pgbench (the movement function, C client)", paired(sql_random, pg)),
        ("random / sql_random (what the Python service keeps)", paired(lx("random"), sql_random)),
        ("sql_hot / pgbench (hot movement, C client)", paired(sql_hot, pg)),
        ("hot / sql_hot (what the Python service keeps)", paired(lx("hot"), sql_hot)),
        ("deposit / random", paired(lx("deposit"), lx("random"))),
        ("hold_commit / random", paired(lx("hold_commit"), lx("random"))),
        ("batch_random / pgbench (transfers/s)", paired(lx("batch_random"), pg)),
        ("batch_hot / pgbench (transfers/s)", paired(lx("batch_hot"), pg)),
        ("batch_random / random (what batching buys a transfer)", paired(lx("batch_random"), lx("random"))),
        (
            "http_batch / batch_random (medians: different phases)",
            lambda c: _ratio_of(idx, ("ledgerx", "http_batch", c), ("ledgerx", "batch_random", c), paired=False),
        ),
        ("random / random_noaudit", paired(lx("random"), lx("random_noaudit"))),
        ("random / random_nometrics", paired(lx("random"), lx("random_nometrics"))),
        ("random / random_noxid (what the event log's position costs)", paired(lx("random"), lx("random_noxid"))),
        ("http_transfer_warm / http_transfer_warm_nometrics", paired(lx("http_transfer_warm"), lx("http_transfer_warm_nometrics"))),
        ("http_transfer / bcrypt ceiling", lambda c: ratio(L("http_transfer", c), (b or {}).get("ceiling_per_s"))),
        ("http_balance / http_me", paired(lx("http_balance"), lx("http_me"))),
        ("http_transfer_warm / http_me", paired(lx("http_transfer_warm"), lx("http_me"))),
        ("http_me / random (HTTP floor vs service)", paired(lx("http_me"), lx("random"))),
    ]
    for name, fn in rows:
        lines.append(f"| {name} | " + " | ".join(_fmt(fn(c)) for c in CONCURRENCIES) + " |")
    scale = run.get("scale")
    if run.get("scale_skipped"):
        lines += ["", "## Long histories", "", "Not run in this run (`BENCH_SCALE=0`): target 6 reads \"not measured\"."]
    if scale:
        lines += ["", "## Long histories", ""]
        if run.get("scale_note"):
            lines += [f"Note: {run['scale_note']}.", ""]
        lines += ["| measurement | postings | value |", "| --- | ---: | --- |"]
        for v in scale.get("verify", []) + ([scale["verify_final"]] if scale.get("verify_final") else []):
            lines.append(
                f"| verify_ledger ({'passed' if v['ok'] else 'FAILED'}) | {v['postings']:,} | "
                f"{v['seconds']:.1f} s, max RSS {v['max_rss_kb'] / 1024:.0f} MiB |"
            )
        for label, st in scale.get("statement", {}).items():
            lines.append(
                f"| statement page 1, account with {st['postings']:,} postings | {st['postings']:,} | "
                f"p50 {st['page1_p50_ms']:.2f} ms, p99 {st['page1_p99_ms']:.2f} ms |"
            )
            lines.append(
                f"| statement page 50 (page_size 20), account with {st['postings']:,} postings | {st['postings']:,} | "
                f"p50 {st['page50_p50_ms']:.2f} ms, p99 {st['page50_p99_ms']:.2f} ms |"
            )
        for load in scale.get("loads", []):
            lines.append(
                f"| bench bulk loader, phase {load['label']} | {load['postings']:,} | "
                f"{load['seconds']:.1f} s = {load['postings'] / load['seconds']:,.0f} postings/s |"
            )
        admin = scale.get("admin_pages") or {}
        for name, page in (admin.get("pages") or {}).items():
            lines.append(
                f"| back-office page `{name}` (server time) | {admin.get('postings', 0):,} | "
                f"p50 {page['p50_ms']:.1f} ms, p99 {page['p99_ms']:.1f} ms |"
            )
        if scale.get("seed_demo"):
            sd = scale["seed_demo"]
            postings = f"{sd['postings']:,}" if isinstance(sd.get("postings"), int) else "n/a"
            lines.append(f"| `manage.py seed_demo` (fresh database) | {postings} | {sd.get('summary', '')} |")
    lines += ["", "## Targets (same run)", "", "| # | target | measured | met? |", "| ---: | --- | ---: | --- |"]
    for t in targets(run):
        met = "not measured" if t["met"] is None else ("**met**" if t["met"] else "**not met**")
        note = f" ({t['note']})" if t["note"] else ""
        lines.append(f"| {t['n']} | {t['target']}{note} | {_fmt(t['measured'], 3)} | {met} |")
    lines += ["", "![transfers/s by concurrency](results/transfers.png)", ""]
    from bench.cluster import saved_section  # the last `bench/run cluster` (results/cluster.json), kept across runs

    cluster = saved_section()
    if cluster and run.get("mode") == "full":
        lines += [cluster, ""]
    from bench import ab  # the saved `bench/run ab` comparisons (results/ab-*.json), kept across runs

    comparisons = ab.saved_section()
    if comparisons and run.get("mode") == "full":
        lines += [comparisons, ""]
    analysis = BENCH / "templates" / "analysis.md"  # the hand-written reading of this run (bottlenecks, evidence)
    if analysis.exists() and run.get("mode") == "full":
        from string import Template

        text = Template(analysis.read_text()).safe_substitute(analysis_values(run))
        lines += ["", text.rstrip(), ""]
    return "\n".join(lines)
