"""Peak memory of the process that applies a batch: 100 items against 1000 (``bash bench/run batch_memory``).

Each size runs in a fresh Python process (``python -m bench batch_rss <items> <batches>``):
a process's peak resident set only ever grows, so the two sizes measured in one process
would hide the smaller one's peak under the larger one's. The fresh process sets Django up on
the bench database, loads the books and builds the op exactly as ``batch_random`` does
(``transactions.batches.batch_create``, atomic, PIN check off), applies one batch to import and
warm everything a batch needs, reads its peak (``VmHWM`` of /proc/self/status), then applies
``batches`` more and reads the peak again. Flat memory: the peak with 1000 items stays within a
small factor of the peak with 100 (the report's target), i.e. nothing held grows with the items.
The PostgreSQL backend is not counted: its resident set is mostly the shared buffers it touched.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (100, 1000)
BATCHES = 10


def vm_hwm_kb(pid: int | str = "self") -> int:
    """The peak resident set of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def batch_rss(items: int, batches: int, *, db_name: str | None = None) -> dict:
    """In this process: the peak RSS after one warming batch of ``items`` transfers and after ``batches`` more."""
    from bench import env

    env.django_setup(db_name or env.BENCH_DB)
    from bench.scenarios import _make_batch

    op = _make_batch(0, hot=False, size=items)
    started = vm_hwm_kb()
    op()  # imports, prepared statements, caches: what any first batch pays, whatever its size
    warmed = vm_hwm_kb()
    seconds = []
    for _ in range(batches):
        t0 = time.perf_counter()
        op()
        seconds.append(time.perf_counter() - t0)
    return {
        "items": items,
        "batches": batches,
        "start_kb": started,
        "warmed_kb": warmed,
        "peak_kb": vm_hwm_kb(),
        "p50_ms": statistics.median(seconds) * 1000,
    }


def batch_memory_run(*, sizes=SIZES, batches: int = BATCHES, db_name: str | None = None, log=print) -> dict:
    """``batch_rss`` for each size, each in a fresh ``python -m bench batch_rss`` process."""
    out: dict = {"batches": batches, "sizes": {}}
    for items in sizes:
        cmd = [sys.executable, "-m", "bench", "batch_rss", str(items), str(batches), *([db_name] if db_name else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[1:])} exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        out["sizes"][str(items)] = row
        log(
            f"  batch memory: {items} items x {batches}: peak RSS {row['peak_kb'] / 1024:.1f} MiB "
            f"(warmed {row['warmed_kb'] / 1024:.1f}, started {row['start_kb'] / 1024:.1f}), p50 {row['p50_ms']:.0f} ms"
        )
    return out


def peak_ratio(memory: dict | None, big: int = SIZES[-1], small: int = SIZES[0]) -> float | None:
    """Peak RSS with ``big`` items / with ``small`` (None when either was not measured)."""
    sizes = (memory or {}).get("sizes") or {}
    a, b = sizes.get(str(big)), sizes.get(str(small))
    if not a or not b or not b.get("peak_kb"):
        return None
    return a["peak_kb"] / b["peak_kb"]
