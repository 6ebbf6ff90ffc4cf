"""Pure helpers: percentiles and the one-line result format every scenario prints.

Kept free of Django and of I/O so the harness's arithmetic has a cheap unit test
(bench/tests/test_stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0..100) of ``values`` by the nearest-rank method.

    Nearest rank never invents a latency that was not observed: p99 of 100
    samples is the 99th smallest. Raises ValueError on an empty sequence.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError("pct must be within 0..100")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def result_line(system: str, scenario: str, concurrency: int, rate: float, p50_ms: float, p99_ms: float) -> str:
    """``<system> <scenario> <concurrency> <per_s> <p50_ms> <p99_ms>``, fixed decimals."""
    return f"{system} {scenario} {concurrency} {rate:.1f} {p50_ms:.2f} {p99_ms:.2f}"


def parse_result_line(line: str) -> dict:
    """The inverse of :func:`result_line` (used to collect results from subprocesses)."""
    system, scenario, concurrency, rate, p50, p99 = line.split()
    return {
        "system": system,
        "scenario": scenario,
        "concurrency": int(concurrency),
        "rate": float(rate),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float | None:
    """The median of the round-by-round ratios ``numerators[i] / denominators[i]``.

    Two points measured in the same round ran minutes apart at most, so a drift
    of the shared machine between rounds cancels out of their ratio; the
    ratio of the two medians does not cancel it (each median may come from
    another round). With an even count the two middle ratios are averaged.
    None when the sequences differ in length, are empty, or hold a 0 denominator.
    """
    if not numerators or len(numerators) != len(denominators) or not all(denominators):
        return None
    ratios = sorted(n / d for n, d in zip(numerators, denominators))
    middle = len(ratios) // 2
    return ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
