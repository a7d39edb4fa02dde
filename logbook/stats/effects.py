"""Effect measures reported beside the verdict, and the Holm adjustment. Pure NumPy/SciPy."""

from __future__ import annotations

import math

import numpy as np
from scipy import special
from scipy import stats as st

from .summary import interquartile_mean


def prob_improvement(b: np.ndarray, c: np.ndarray) -> float:
    """P(C > B): the chance that a random candidate seed beats a random baseline seed, ties
    counting ½. Equals the Mann–Whitney U of the candidate divided by ``n_c · n_b``
    (``scipy.stats.mannwhitneyu(c, b).statistic / (n_c * n_b)``): counted pair by pair for small
    arms, from ranks for large ones."""
    b = np.asarray(b, dtype=float)
    c = np.asarray(c, dtype=float)
    if b.size == 0 or c.size == 0:
        return math.nan
    if b.size * c.size <= 250_000:  # small arms: count the pairs directly
        diff = c[:, None] - b[None, :]
        return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / (c.size * b.size))
    ranks = st.rankdata(np.concatenate([c, b]))
    u_c = ranks[: c.size].sum() - c.size * (c.size + 1) / 2
    return float(u_c / (c.size * b.size))


def prob_improvement_normal(mean_b: float, sd_b: float, mean_c: float, sd_c: float) -> float:
    """P(C > B) if per-seed values were normal with these means and sds: ``Φ(Δ / √(s_b² + s_c²))``.
    Used when only summary numbers are known (a paper's table)."""
    scale = math.hypot(sd_b, sd_c)
    if scale == 0:
        return 1.0 if mean_c > mean_b else (0.0 if mean_c < mean_b else 0.5)
    return float(special.ndtr((mean_c - mean_b) / scale))


def iqm_difference(b: np.ndarray, c: np.ndarray) -> float:
    """IQM(candidate) − IQM(baseline): a difference of centres that a few wild seeds cannot move."""
    return interquartile_mean(c) - interquartile_mean(b)


def default_delta(sd_b: float, n_b: int, sd_c: float, n_c: int) -> float:
    """The default smallest effect worth claiming when none is registered:
    ``δ = √2 · Φ⁻¹(0.75) · s_pooled ≈ 0.954 · s_pooled``, the shift at which a random candidate
    seed beats a random baseline seed three times in four (for normal values of equal spread),
    with ``s_pooled² = ((n_b−1)s_b² + (n_c−1)s_c²) / (n_b + n_c − 2)``."""
    pooled = math.sqrt(((n_b - 1) * sd_b**2 + (n_c - 1) * sd_c**2) / (n_b + n_c - 2))
    return math.sqrt(2.0) * float(special.ndtri(0.75)) * pooled


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order: sort ascending, multiply
    the k-th smallest by ``(m − k + 1)``, carry the running maximum, cap at 1. Matches
    ``statsmodels.stats.multitest.multipletests(p, method='holm')[1]``."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.maximum.accumulate(scaled)
    out = np.empty(m)
    out[order] = adjusted
    return out
