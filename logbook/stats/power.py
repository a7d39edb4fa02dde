"""How many seeds per arm would likely settle an inconclusive comparison."""

from __future__ import annotations

import math

from scipy import special

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


def seeds_needed(distance: float, sd_b: float, sd_c: float, alpha: float, power: float = 0.8, minimum: int = 5) -> int | None:
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
