"""Calibration of the verdict rule, measured by simulation (not assumed).

Per-seed values are normal with sd 1. Rows:
- positive rate when there is no true difference, at n = 5, 10, 30 seeds per arm (goal ≤ α);
- negative rate when the true effect is exactly δ (goal ≤ α);
- positive rate when a user adds one seed pair at a time from 5 to 30 and stops at the first
  positive: the fixed-n Welch interval against the anytime-valid interval (goal ≤ α for anytime);
- family-wise positive rate over 20 null variants judged as one family (goal ≤ α).

Run: .venv/bin/python benchmarks/calibration.py [--cases 2000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

from logbook.stats import family_verdicts, verdict  # noqa: E402

ALPHA = 0.05


def judge(b, c, delta, **kwargs):
    return verdict(b, c, delta=delta, alpha=ALPHA, bootstrap_resamples=0, **kwargs).verdict


def rate(hits: int, cases: int) -> str:
    se = np.sqrt(max(hits, 1) * (cases - hits) / cases) / cases
    return f"{hits / cases:.4f} ± {1.96 * se:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = args.cases
    rows: list[list[str]] = []

    for delta in (0.0, 0.5):
        for n in (5, 10, 30):
            hits = sum(judge(rng.normal(0, 1, n), rng.normal(0, 1, n), delta) == "positive" for _ in range(cases))
            rows.append([f"positive rate, no true difference, δ = {delta}", str(n), rate(hits, cases), f"≤ {ALPHA}"])

    delta = 0.5
    for n in (5, 10, 30):
        hits = sum(judge(rng.normal(0, 1, n), rng.normal(delta, 1, n), delta) == "negative" for _ in range(cases))
        rows.append([f"negative rate, true effect = δ = {delta}", str(n), rate(hits, cases), f"≤ {ALPHA}"])

    for mode in ("welch", "anytime"):
        hits = 0
        for _ in range(cases):
            b, c = rng.normal(0, 1, 30), rng.normal(0, 1, 30)
            for n in range(5, 31):
                if judge(b[:n], c[:n], 0.0, interval=mode, planned_n=5) == "positive":
                    hits += 1
                    break
        rows.append([f"positive rate, adding seed pairs 5→30, stop at first positive ({mode})", "5..30",
                     rate(hits, cases), f"≤ {ALPHA}" if mode == "anytime" else "(shows the problem)"])

    hits = 0
    for _ in range(cases):
        base = rng.normal(0, 1, 10)
        family = {f"v{i}": rng.normal(0, 1, 10) for i in range(20)}
        results = family_verdicts(base, family, delta=0.0, alpha=ALPHA, bootstrap_resamples=0)
        hits += any(r.verdict == "positive" for r in results)
    rows.append(["family-wise positive rate, 20 null variants", "10", rate(hits, cases), f"≤ {ALPHA}"])

    record(
        "calibration",
        "Verdict calibration (simulation)",
        ["case", "seeds per arm", "rate (± 95% MC)", "goal"],
        rows,
        [f"{cases} simulated entries per row, α = {ALPHA}, normal per-seed values with sd 1, seed {args.seed}.",
         "Command: .venv/bin/python benchmarks/calibration.py"],
    )


if __name__ == "__main__":
    main()
