"""Speed of the statistics: verdicts for 1,000 entries of 10 seeds × 3 arms (goal ≤ 1 s).

Each entry is a family of two candidates against a baseline, judged with everything reported
(Welch interval, bootstrap with 2,000 resamples, P(C > B), IQM, Holm, seeds needed).

Run: .venv/bin/python benchmarks/stats_speed.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

from logbook.stats import family_verdicts  # noqa: E402


def run(entries: int, bootstrap: int, rng: np.random.Generator) -> tuple[float, dict[str, int]]:
    data = [(rng.normal(0, 1, 10), {"a": rng.normal(rng.normal(0, 0.7), 1, 10), "b": rng.normal(0, 1, 10)}) for _ in range(entries)]
    counts: dict[str, int] = {}
    start = time.perf_counter()
    for base, cands in data:
        for v in family_verdicts(base, cands, delta=0.3, bootstrap_resamples=bootstrap):
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
    return time.perf_counter() - start, counts


def main() -> None:
    rng = np.random.default_rng(1)
    run(20, 2000, rng)  # warm imports and caches
    rows = []
    for bootstrap in (2000, 0):
        times = []
        for _ in range(3):
            elapsed, counts = run(1000, bootstrap, rng)
            times.append(elapsed)
        label = "with bootstrap (2,000 resamples)" if bootstrap else "without bootstrap"
        rows.append(["1,000 entries × 2 candidates, 10 seeds", label, f"{min(times):.3f} s", f"{np.median(times):.3f} s", "≤ 1 s"])
    record(
        "stats_speed",
        "Verdict speed",
        ["workload", "mode", "best of 3", "median of 3", "goal"],
        rows,
        [f"Verdict mix in the last run: {counts}.", "Command: .venv/bin/python benchmarks/stats_speed.py"],
    )


if __name__ == "__main__":
    main()
