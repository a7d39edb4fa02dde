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
    x = np.sort(np.asarray(values, dtype=float))
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


def summarize(values: np.ndarray, failed: int = 0) -> ArmSummary:
    """Summary of one arm's per-seed values; NaN/inf values and ``failed`` runs count as excluded."""
    values = np.asarray(values, dtype=float)
    x = finite(values)
    nan = float("nan")
    return ArmSummary(
        n=int(x.size),
        excluded=int(values.size - x.size + failed),
        mean=float(x.mean()) if x.size else nan,
        sd=float(x.std(ddof=1)) if x.size > 1 else nan,
        median=float(np.median(x)) if x.size else nan,
        iqm=interquartile_mean(x),
        min=float(x.min()) if x.size else nan,
        max=float(x.max()) if x.size else nan,
    )
