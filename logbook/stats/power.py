"""How many seeds per arm would likely settle an inconclusive comparison."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

from .intervals import mixture_ratio

MAX_SEEDS = 100_000


def welch_power(distance: float, sd_b: float, sd_c: float, n: int, alpha: float) -> float:
    """Power of the one-sided level-``alpha`` Welch test to detect a true difference ``distance``
    with ``n`` seeds in each arm and these per-seed sds: ``1 − F_{nct(df, λ)}(t_{1−α, df})`` with
    ``λ = distance / √((s_b² + s_c²)/n)`` and ``df = (s_b² + s_c²)² (n−1) / (s_b⁴ + s_c⁴)``.
    With equal sds this is ``statsmodels``' ``TTestIndPower().power(..., alternative='larger')``."""
    var = sd_b**2 + sd_c**2
    if var == 0:
        return 1.0 if distance > 0 else 0.0
    df = var**2 * (n - 1) / (sd_b**4 + sd_c**4)
    ncp = distance / math.sqrt(var / n)
    crit = special.stdtrit(df, 1 - alpha)
    return float(1.0 - special.nctdtr(df, ncp, crit))


def welch_seeds_needed(distance: float, sd_b: float, sd_c: float, alpha: float, power: float = 0.8, minimum: int = 5) -> int | None:
    """The smallest ``n`` seeds per arm (at least ``minimum``) at which ``welch_power`` reaches
    ``power``, or None when it cannot be reached by ``MAX_SEEDS`` (a distance of about zero).

    ``distance`` is how far the estimate must be from the decision boundary: the observed effect
    when it is at least δ (to exclude 0), else δ minus the observed effect (to exclude δ). The
    answer assumes the observed effect and spread are the truth, so it is a guide, not a promise.
    """
    if not math.isfinite(distance) or distance <= 0:
        return None
    var = float(sd_b**2 + sd_c**2)
    if var == 0:
        return minimum
    # Start from the normal approximation n ≈ (z₁₋α + z_power)² (s_b² + s_c²) / distance², then
    # step to the exact boundary: power grows with n, and t-power is a little below normal power,
    # so this takes a few evaluations instead of a bisection over the whole range.
    z = float(special.ndtri(1 - alpha) + special.ndtri(power))  # Python floats: an overflow is inf, silently
    squared = distance * distance
    guess = z * z * var / squared if squared > 0 else math.inf
    if not math.isfinite(guess) or guess > MAX_SEEDS:
        return None
    n = max(2, math.ceil(guess))
    while welch_power(distance, sd_b, sd_c, n, alpha) < power:
        n += 1
        if n > MAX_SEEDS:
            return None
    while n > 2 and welch_power(distance, sd_b, sd_c, n - 1, alpha) >= power:
        n -= 1
    return max(n, minimum)


SPREAD_POINTS = 16
_Z = special.ndtri((np.arange(SPREAD_POINTS) + 0.5) / SPREAD_POINTS)


def _settle_probabilities(
    effect: float, delta: float, sd_b: float, sd_c: float, n: np.ndarray, alpha: float, planned_n: int,
) -> np.ndarray:
    """``settle_probability`` for an array of seed counts at once."""
    n = np.asarray(n, dtype=float)
    var = sd_b**2 + sd_c**2
    se = np.sqrt(var / n)
    # h / ŝe for the tuned anytime interval: with v = ŝe² and τ² = r·v·n/planned_n the ratio v/τ²
    # does not depend on the spread (anytime_half_width(1, n/planned_n, alpha), written for arrays).
    tau = mixture_ratio(alpha) * n / planned_n
    c = np.sqrt((1 + tau) / tau * np.log((1 + tau) / alpha**2))
    df = var**2 * (n - 1) / (sd_b**4 + sd_c**4)
    # ŝe²/se² ~ χ²_df/df at equal-probability points, by the Wilson–Hilferty cube (accurate to a few
    # 1e-3 for df ≥ 4, and far cheaper than the exact inverse).
    k = 2.0 / (9.0 * df[:, None])
    w = np.maximum(1.0 - k + _Z[None, :] * np.sqrt(k), 0.0) ** 3
    h = (c * se)[:, None] * np.sqrt(w)
    inv_se = (1.0 / se)[:, None]
    both = special.ndtr(np.stack([(effect - np.maximum(h, delta)) * inv_se, (delta - effect - h) * inv_se]))
    return both.sum(axis=0).mean(axis=1)


def settle_probability(effect: float, delta: float, sd_b: float, sd_c: float, n: int, alpha: float, planned_n: int) -> float:
    """The chance that an entry with ``n`` seeds per arm is settled (positive or negative) by the rule
    when the true effect is ``effect`` and these are the per-seed sds, judged, as a topped-up entry
    is, with the anytime interval tuned to ``planned_n``. Its half-width is ``h = c · ŝe`` with ``c``
    fixed by ``n``, ``planned_n`` and ``alpha`` (``anytime_half_width`` scales with the estimated
    spread), so with ``Δ̂ ~ N(effect, se²)`` independent of ``ŝe² = se² · w``:

        E_w[ P(Δ̂ > max(c·se·√w, δ)) + P(Δ̂ < δ − c·se·√w) ],   w ~ χ²_df / df,

    the first term "positive" (the lower bound clears 0 *and* the estimate reaches δ), the second
    "negative" (the upper bound is below δ); the expectation over the estimated spread (Satterthwaite
    ``df``) is taken on ``SPREAD_POINTS`` equal-probability points.
    """
    if sd_b**2 + sd_c**2 == 0:
        return 1.0 if effect != delta else 0.0
    return float(_settle_probabilities(effect, delta, sd_b, sd_c, np.array([n]), alpha, planned_n)[0])


def seeds_needed(
    effect: float, delta: float, sd_b: float, sd_c: float, alpha: float, *, planned_n: int | None = None,
    power: float = 0.8, minimum: int = 5,
) -> int | None:
    """``_seeds_needed`` (below), remembered for exactly these inputs: views recompute the same
    verdicts on every refresh, and the search costs more than the rest of a verdict without a
    bootstrap. Keyed by the exact values (no rounding: an answer never depends on the cache)."""
    return _seeds_needed_cached(float(effect), float(delta), float(sd_b), float(sd_c), float(alpha),
                                None if planned_n is None else int(planned_n), float(power), int(minimum))


@lru_cache(maxsize=65536)
def _seeds_needed_cached(effect: float, delta: float, sd_b: float, sd_c: float, alpha: float, planned_n: int | None,
                         power: float, minimum: int) -> int | None:
    return _seeds_needed(effect, delta, sd_b, sd_c, alpha, planned_n=planned_n, power=power, minimum=minimum)


@lru_cache(maxsize=64)
def _grid(minimum: int) -> np.ndarray:
    """The geometric grid of seed counts ``_seeds_needed`` scans first (read-only)."""
    grid = np.unique(np.geomspace(minimum, MAX_SEEDS, 32).round().astype(int))
    grid.setflags(write=False)
    return grid


def _seeds_needed(
    effect: float, delta: float, sd_b: float, sd_c: float, alpha: float, *, planned_n: int | None = None,
    power: float = 0.8, minimum: int = 5,
) -> int | None:
    """The smallest ``n`` seeds per arm (at least ``minimum``) at which ``settle_probability``
    reaches ``power``, or None when no number up to ``MAX_SEEDS`` does: a true effect at (or very
    near) δ is never settled with probability 0.8, since the estimate then falls short of δ about
    half the time. ``effect`` and the sds are taken as the truth (the observed values, in a verdict),
    so this is a guide, not a promise. ``planned_n`` is the plan the anytime interval is tuned to
    (default: ``minimum``). Vectorised: one pass over a geometric grid of sizes finds the first that
    settles, a second pass over the integers below it finds the smallest.
    """
    if not all(math.isfinite(x) for x in (effect, delta, sd_b, sd_c)):
        return None
    n0 = planned_n or minimum
    if sd_b**2 + sd_c**2 == 0:
        return minimum if effect != delta else None
    grid = _grid(minimum)
    ok = _settle_probabilities(effect, delta, sd_b, sd_c, grid, alpha, n0) >= power
    if not ok.any():
        return None
    first = int(np.argmax(ok))
    if first == 0:
        return minimum
    low, high = int(grid[first - 1]), int(grid[first])
    while high - low > 1:
        # Up to 128 integers at a time (the bracket is about a third of n wide): one pass below n ≈ 400.
        candidates = np.unique(np.linspace(low + 1, high, min(high - low, 128)).round().astype(int))
        hits = _settle_probabilities(effect, delta, sd_b, sd_c, candidates, alpha, n0) >= power
        index = int(np.argmax(hits)) if hits.any() else len(candidates) - 1
        high = int(candidates[index])
        low = int(candidates[index - 1]) if index > 0 else low
    return max(high, minimum)
