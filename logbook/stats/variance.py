"""Where the spread between seeds comes from: variance due to each source of randomness.

A variance study trains the same arm many times, varying one source of randomness (model
initialisation, data order, dropout/noise, ...) with every other source held at one fixed value,
and once more varying all of them together (Bouthillier et al., "Accounting for variance in
machine learning benchmarks", 2021). For a source ``s`` with per-run values ``x_s`` and the
all-sources values ``x_all``:

- the standard deviation due to ``s`` alone is ``sd(x_s)`` (sample sd, ``ddof = 1``);
- its share of the total is ``var(x_s) / var(x_all)``. Shares need not sum to one: sources
  interact, and each share is itself an estimate (it can exceed 1 with few seeds).

Intervals are percentile bootstraps over runs: each group is resampled with replacement on its
own (the groups are independent experiments). Non-finite values (diverged runs) are left out
and counted by the caller. Pure functions over arrays; nothing of the project is imported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np

ALL = "all"  # the group in which every source varies
DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 2000
MATTERS_SHARE = 0.1  # a source "matters" when it alone explains at least this share of the total


def finite_values(values: np.ndarray) -> np.ndarray:
    """The finite entries of ``values`` as a flat float array."""
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def sample_sd(values: np.ndarray) -> float:
    """Sample standard deviation (``ddof = 1``) of the finite values; NaN with fewer than two."""
    x = finite_values(values)
    return float(np.std(x, ddof=1)) if x.size >= 2 else math.nan


def bootstrap_variances(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``n_resamples`` sample variances of ``values`` resampled with replacement (same size)."""
    x = finite_values(values)
    if x.size < 2:
        return np.full(n_resamples, math.nan)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    return np.var(x[idx], axis=1, ddof=1)


def percentile_interval(samples: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap samples (NaN samples ignored)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(s, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def sd_interval(values: np.ndarray, level: float = DEFAULT_LEVEL, n_resamples: int = DEFAULT_RESAMPLES,
                seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the sample standard deviation of ``values``."""
    variances = bootstrap_variances(values, n_resamples, np.random.default_rng(seed))
    return percentile_interval(np.sqrt(variances), level)


@dataclass(frozen=True)
class SourceVariance:
    """The spread due to one source (or to all together), with bootstrap intervals.

    ``share`` is this group's variance over the all-sources variance (1 for the all group; NaN
    when either has fewer than two finite values or the total is zero).
    """

    source: str
    n: int
    sd: float
    sd_low: float
    sd_high: float
    share: float
    share_low: float
    share_high: float

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _ratio(numerator: np.ndarray | float, denominator: np.ndarray | float) -> np.ndarray | float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(denominator) > 0, np.asarray(numerator) / np.asarray(denominator), np.nan)


def decompose(groups: Mapping[str, np.ndarray], *, level: float = DEFAULT_LEVEL,
              n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, SourceVariance]:
    """Per group (each source, and ``"all"`` if given): sd with its interval and its share of the
    all-sources variance with its interval. Groups are resampled independently; the share's
    interval pairs the k-th resample of a source with the k-th resample of the all group."""
    rng = np.random.default_rng(seed)
    boot = {name: bootstrap_variances(values, n_resamples, rng) for name, values in groups.items()}
    total_var = sample_sd(groups[ALL]) ** 2 if ALL in groups else math.nan
    out: dict[str, SourceVariance] = {}
    for name, values in groups.items():
        x = finite_values(values)
        sd = sample_sd(x)
        sd_low, sd_high = percentile_interval(np.sqrt(boot[name]), level)
        if ALL in groups:
            share = float(_ratio(sd**2, total_var)) if x.size >= 2 else math.nan
            share_low, share_high = percentile_interval(_ratio(boot[name], boot[ALL]), level)
        else:
            share = share_low = share_high = math.nan
        out[name] = SourceVariance(name, int(x.size), sd, sd_low, sd_high, share, share_low, share_high)
    return out


def sources_that_matter(result: Mapping[str, SourceVariance], threshold: float = MATTERS_SHARE) -> list[str]:
    """Sources (not the all group) whose share of the total variance is at least ``threshold``."""
    return [name for name, r in result.items() if name != ALL and math.isfinite(r.share) and r.share >= threshold]
