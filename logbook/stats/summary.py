"""Per-arm summaries of per-seed values. Pure functions over NumPy arrays."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def finite(values: np.ndarray) -> np.ndarray:
    """The finite values of ``values`` (diverged seeds are NaN or ±inf and are left out)."""
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def interquartile_mean(values: np.ndarray) -> float:
    """The interquartile mean (IQM): the mean of the values left after cutting the lowest and
    highest ``floor(n / 4)`` values, as in rliable (Agarwal et al., 2021) and
    ``scipy.stats.trim_mean(values, 0.25)``. Robust to a few outlying seeds, unlike the mean."""
    return _iqm_of_sorted(np.sort(np.asarray(values, dtype=float)))


def _iqm_of_sorted(x: np.ndarray) -> float:
    if x.size == 0:
        return float("nan")
    cut = int(0.25 * x.size)
    return float(x[cut : x.size - cut].mean())


@dataclass(frozen=True)
class ArmSummary:
    """What is reported for one arm: counts, centre, spread and range of its finite values."""

    n: int  # finite values used by the test
    excluded: int  # non-finite values (diverged) plus failed runs, counted but not used
    mean: float
    sd: float  # sample standard deviation (ddof = 1)
    median: float
    iqm: float
    min: float
    max: float

    def to_dict(self) -> dict:
        return asdict(self)


def oriented(summary: ArmSummary, sign: float) -> ArmSummary:
    """The same summary for values multiplied by ``sign`` (±1): centres flip, spread stays."""
    if sign > 0:
        return summary
    return ArmSummary(
        n=summary.n, excluded=summary.excluded, mean=-summary.mean, sd=summary.sd, median=-summary.median,
        iqm=-summary.iqm, min=-summary.max, max=-summary.min,
    )


def summarize(values: np.ndarray, failed: int = 0) -> ArmSummary:
    """Summary of one arm's per-seed values; NaN/inf values and ``failed`` runs count as excluded."""
    values = np.asarray(values, dtype=float)
    x = np.sort(finite(values))
    n = int(x.size)
    nan = float("nan")
    if n == 0:
        return ArmSummary(n=0, excluded=int(values.size + failed), mean=nan, sd=nan, median=nan, iqm=nan, min=nan, max=nan)
    middle = n // 2
    median = float(x[middle]) if n % 2 else float((x[middle - 1] + x[middle]) / 2)
    return ArmSummary(
        n=n,
        excluded=int(values.size - n + failed),
        mean=float(x.mean()),
        sd=float(x.std(ddof=1)) if n > 1 else nan,
        median=median,
        iqm=_iqm_of_sorted(x),
        min=float(x[0]),
        max=float(x[-1]),
    )
