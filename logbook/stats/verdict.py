"""The verdict: positive, negative or inconclusive, for one candidate arm against the baseline.

The rule (README, "How the verdict is decided"):

1. Orient the values so that larger is better (negate them when lower is better). Non-finite
   values (diverged seeds) and failed runs are excluded from the test, and counted.
2. Fewer than five finite seeds in either arm: inconclusive ("too few seeds").
3. ``Δ = mean(C) − mean(B)``; ``[L, U]`` its Welch interval of level ``1 − 2α′``, with
   ``α′ = α / m`` for a family of ``m`` candidates (each claim below is then a one-sided
   level-``α′`` test). When either arm's values are skewed (|sample skewness| ≥ 0.8), the
   skew-corrected interval is computed too and the more conservative bound of the two is used on
   each side (``skew_widened`` says when that moved a bound). After peeking (seeds added beyond the
   plan, or a verdict before the plan finished), ``[L, U]`` is the anytime-valid confidence
   sequence tuned to the planned seeds per arm instead, and no fixed-n p-value is reported.
4. negative if ``U < δ``: "worse" if ``U < 0``; "real but smaller than δ" if ``L > 0``;
   "equivalent" if ``L > −δ``; else "no improvement worth δ". An arm that lost more seeds to
   failure or divergence than the other cannot be judged in its own favour: a candidate with more
   exclusions cannot be positive, a baseline with more exclusions cannot make the candidate
   negative; such a verdict is inconclusive and names the arm.
5. positive if ``L > 0`` and ``Δ ≥ δ``: "strong" if ``L ≥ δ``.
6. Otherwise inconclusive, with the seeds per arm that would settle it with probability 0.8 by this
   rule and the anytime interval a top-up would use (``power.seeds_needed``).

δ is always given in metric units: a δ derived from the data being judged would be circular.
Reported beside it, never deciding: the bootstrap interval, the IQM difference, P(C > B), the
one-sided p-value for ``Δ > 0`` and its Holm adjustment over the family (fixed-n only).

One file (over 400 lines) because the verdict rule is read as a whole: its steps, the sentence that states it and the family wrapper; the arithmetic it uses lives in the small modules beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from .effects import holm, iqm_difference, prob_improvement, prob_improvement_normal
from .intervals import (
    SKEW_THRESHOLD, Interval, anytime_interval, bootstrap_interval, sample_skewness, skew_interval, welch_interval,
    welch_p_greater,
)
from .power import seeds_needed as power_seeds_needed
from .summary import ArmSummary, finite, oriented, summarize

MIN_SEEDS = 5
POWER = 0.8
INTERVALS = ("welch", "anytime")


@dataclass(frozen=True)
class Verdict:
    """A verdict and everything behind it.

    ``effect``, ``ci_low`` and ``ci_high`` are in the *better* direction (positive means the
    candidate improves, whichever way the metric points), as are ``delta`` and the bootstrap
    bounds. ``raw_effect``, ``raw_ci_low`` and ``raw_ci_high`` are candidate minus baseline in the
    metric's own units. Arm summaries are in the metric's own units.
    """

    verdict: str  # positive, negative, inconclusive
    detail: str
    sentence: str
    effect: float
    ci_low: float
    ci_high: float
    raw_effect: float
    raw_ci_low: float
    raw_ci_high: float
    interval: str  # welch or anytime
    skew_widened: bool  # a skew-corrected bound was more conservative than Welch's and was used
    level: float
    delta: float
    delta_source: str  # given
    alpha: float
    alpha_adjusted: float
    family_size: int
    higher_is_better: bool
    n_baseline: int
    n_candidate: int
    excluded_baseline: int
    excluded_candidate: int
    seeds_needed: int | None
    prob_improvement: float
    prob_improvement_method: str  # mann-whitney or normal-approximation
    p_value: float | None  # one-sided Welch p for Δ > 0; None beside an anytime interval
    p_value_holm: float | None  # Holm-adjusted over the family of family_size; None beside an anytime interval
    bootstrap_low: float | None
    bootstrap_high: float | None
    iqm_difference: float | None
    baseline: dict = field(default_factory=dict)
    candidate: dict = field(default_factory=dict)
    metric: str = "metric"
    baseline_name: str = "baseline"
    candidate_name: str = "candidate"
    reasons: tuple[str, ...] = ()
    skewness_baseline: float | None = None
    skewness_candidate: float | None = None
    planned_n: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        return out


def _check_inputs(delta: float, alpha: float, family_size: int, interval: str, planned_n: int | None = None) -> None:
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 0.5):
        raise ValueError(f"alpha: expected a number between 0 and 0.5 (exclusive), got {alpha!r}")
    if isinstance(family_size, bool) or not isinstance(family_size, (int, np.integer)) or family_size < 1:
        raise ValueError(f"family_size: expected a whole number ≥ 1, got {family_size!r}")
    if delta is None:
        raise ValueError(
            "delta: expected δ, the smallest effect worth claiming, in metric units (a δ derived from the "
            "values being judged would move with them, so it is never defaulted)"
        )
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating)) or not (math.isfinite(delta) and delta >= 0):
        raise ValueError(f"delta: expected a finite number ≥ 0, got {delta!r}")
    if interval not in INTERVALS:
        raise ValueError(f"interval: expected one of {', '.join(INTERVALS)}, got {interval!r}")
    if interval == "anytime" and (
        isinstance(planned_n, bool) or not isinstance(planned_n, (int, np.integer)) or planned_n < 2
    ):
        raise ValueError(f"planned_n: the anytime interval is tuned to the planned seeds per arm; expected a whole number ≥ 2, got {planned_n!r}")


def _fmt(x: float | None) -> str:
    """A number for prose: four significant digits and a true minus sign."""
    if x is None or not math.isfinite(x):
        return "n/a"
    text = f"{x:.4g}"
    return text.replace("-", "−")


def _sentence(
    *, verdict: str, detail: str, metric: str, candidate_name: str, baseline_name: str, raw: Interval | None,
    upper: float | None, delta: float, higher_is_better: bool, needed: int | None, enough_seeds: bool,
    family_size: int, alpha_adjusted: float, skew_widened: bool,
) -> str:
    parts: list[str] = []
    if raw is not None:
        kind = "anytime-valid " if raw.kind == "anytime" else ""
        parts.append(
            f"The {candidate_name} arm changes {metric} by {_fmt(raw.effect)} relative to {baseline_name} "
            f"({kind}{raw.level:.0%} CI {_fmt(raw.low)} to {_fmt(raw.high)})."
        )
    if skew_widened:
        parts.append("The per-seed values are skewed, so the interval was widened to the skew-corrected bound.")
    delta_text = f"δ = {_fmt(delta)}"
    if verdict == "negative":
        parts.append(f"Improvements of {delta_text} or more are ruled out: a negative result ({detail}).")
    elif verdict == "positive":
        strong = "; the whole interval lies beyond δ" if detail == "strong" else ""
        parts.append(f"An improvement is established and its estimate reaches {delta_text}{strong}: a positive result.")
    else:
        if needed:
            settle = f"; about {needed} seeds per arm would likely settle it"
        elif enough_seeds:
            settle = "; the estimate sits so close to δ that no practical number of seeds is likely to settle it"
        else:
            settle = ""
        if detail.startswith("too few seeds"):
            parts.append(f"Inconclusive: {detail}{settle}.")
        else:
            parts.append(f"Neither an improvement of {delta_text} nor its absence is established: inconclusive ({detail}){settle}.")
    if enough_seeds and upper is not None and math.isfinite(upper):
        gain = "Increases" if higher_is_better else "Reductions"
        if upper > 0:
            parts.append(f"{gain} of {metric} larger than {_fmt(upper)} are ruled out.")
        else:
            parts.append(f"No improvement of {metric} at all is compatible with the data at this level.")
    if family_size == 1:
        parts.append("Judged as the only variant tried (family of 1).")
    else:
        parts.append(f"Judged as one of {family_size} variants tried (α′ = {alpha_adjusted:.3g}).")
    return " ".join(parts)


def _guard(verdict: str, b: ArmSummary, c: ArmSummary, baseline_name: str, candidate_name: str) -> str | None:
    """Why a verdict in one arm's favour is withheld: that arm's opponent lost fewer seeds. A
    positive needs the candidate to have no more failed/diverged seeds than the baseline; a negative
    needs the baseline to have no more than the candidate (losing its worst seeds flatters an arm)."""
    if verdict == "positive" and c.excluded > b.excluded:
        return (
            f"the candidate ({candidate_name}) failed or diverged on {c.excluded} seeds against {b.excluded} "
            f"for the baseline ({baseline_name}), so it cannot be called positive"
        )
    if verdict == "negative" and b.excluded > c.excluded:
        return (
            f"the baseline ({baseline_name}) failed or diverged on {b.excluded} seeds against {c.excluded} "
            f"for the candidate ({candidate_name}), so the candidate cannot be called negative"
        )
    return None


def _judge(
    b: ArmSummary, c: ArmSummary, *, delta: float, alpha: float, family_size: int, interval: str,
    planned_n: int | None, skew_ci: Interval | None = None, baseline_name: str = "baseline",
    candidate_name: str = "candidate",
) -> dict[str, Any]:
    """The decision from oriented summaries (larger is better). Returns the deciding fields.

    ``skew_ci`` is the skew-corrected interval, used on a side where it is more conservative than
    Welch's (fixed-n only)."""
    alpha_adj = alpha / family_size
    level = 1 - 2 * alpha_adj
    reasons: list[str] = []
    enough_for_spread = b.n >= 2 and c.n >= 2
    delta_value = float(delta)

    ci: Interval | None = None
    p_value: float | None = None
    skew_widened = False
    if enough_for_spread:
        if interval == "anytime":
            ci = anytime_interval(b.mean, b.sd, b.n, c.mean, c.sd, c.n, alpha_adj, planned_n)
        else:
            ci = welch_interval(b.mean, b.sd, b.n, c.mean, c.sd, c.n, level)
            p_value = welch_p_greater(b.mean, b.sd, b.n, c.mean, c.sd, c.n)
            # Rounding-level differences (a skewness of ~0 computed two ways) do not count as widening.
            tol = 1e-9 * max(ci.se, abs(ci.effect), 1e-300)
            if skew_ci is not None and (skew_ci.low < ci.low - tol or skew_ci.high > ci.high + tol):
                skew_widened = True
                ci = replace(ci, low=min(ci.low, skew_ci.low), high=max(ci.high, skew_ci.high))
    n0 = planned_n or max(b.n, c.n, MIN_SEEDS)

    def settle_seeds(effect: float) -> int | None:
        return power_seeds_needed(effect, delta_value, b.sd, c.sd, alpha_adj, planned_n=n0, power=POWER, minimum=MIN_SEEDS)

    needed: int | None = None
    if b.n < MIN_SEEDS or c.n < MIN_SEEDS:
        verdict = "inconclusive"
        detail = f"too few seeds: {b.n} baseline and {c.n} candidate finite values, at least {MIN_SEEDS} per arm are needed"
        reasons.append(detail)
        if ci is not None:
            needed = settle_seeds(ci.effect)
        needed = max(needed or MIN_SEEDS, MIN_SEEDS) if ci is None else needed
    else:
        assert ci is not None
        low, high, effect = ci.low, ci.high, ci.effect
        if high < delta_value:
            verdict = "negative"
            if high < 0:
                detail = "worse"
            elif low > 0:
                detail = "real but smaller than δ"
            elif low > -delta_value:
                detail = "equivalent"
            else:
                detail = "no improvement worth δ"
        elif low > 0 and effect >= delta_value:
            verdict, detail = "positive", ("strong" if low >= delta_value else "positive")
        else:
            verdict = "inconclusive"
            if low > 0:
                detail = "an improvement is established, but whether it reaches δ is not"
            else:
                detail = "the interval spans both 0 and δ"
        withheld = _guard(verdict, b, c, baseline_name, candidate_name)
        if withheld:
            verdict, detail = "inconclusive", withheld
            reasons.append(withheld)
        if verdict == "inconclusive":
            needed = settle_seeds(effect)
    return {
        "verdict": verdict, "detail": detail, "ci": ci, "p_value": p_value, "delta": delta_value,
        "delta_source": "given", "alpha_adjusted": alpha_adj, "level": level, "seeds_needed": needed,
        "reasons": tuple(reasons), "skew_widened": skew_widened, "enough_seeds": b.n >= MIN_SEEDS and c.n >= MIN_SEEDS,
    }


def _holm_single(p_value: float | None, family_size: int) -> float | None:
    """Holm's adjustment of one p-value in a family of ``family_size`` whose other members are
    untested (p = 1): ``min(1, m · p)``."""
    if p_value is None or not math.isfinite(p_value):
        return p_value
    return float(holm(np.concatenate([[p_value], np.ones(family_size - 1)]))[0])


def _assemble(
    judged: dict[str, Any], *, b_raw: ArmSummary, c_raw: ArmSummary, higher_is_better: bool, alpha: float,
    family_size: int, extras: dict[str, Any], metric: str, baseline_name: str, candidate_name: str,
    planned_n: int | None,
) -> Verdict:
    ci: Interval | None = judged["ci"]
    sign = 1.0 if higher_is_better else -1.0
    nan = math.nan
    if ci is not None:
        raw = Interval(sign * ci.effect, *sorted((sign * ci.low, sign * ci.high)), ci.se, ci.df, ci.kind, ci.level)
        effect, low, high = ci.effect, ci.low, ci.high
    else:
        raw, effect, low, high = None, nan, nan, nan
    sentence = _sentence(
        verdict=judged["verdict"], detail=judged["detail"], metric=metric, candidate_name=candidate_name,
        baseline_name=baseline_name, raw=raw, upper=high if ci is not None else None, delta=judged["delta"],
        higher_is_better=higher_is_better, needed=judged["seeds_needed"], enough_seeds=judged["enough_seeds"],
        family_size=int(family_size), alpha_adjusted=judged["alpha_adjusted"], skew_widened=judged["skew_widened"],
    )
    return Verdict(
        verdict=judged["verdict"],
        detail=judged["detail"],
        sentence=sentence,
        effect=effect,
        ci_low=low,
        ci_high=high,
        raw_effect=raw.effect if raw else nan,
        raw_ci_low=raw.low if raw else nan,
        raw_ci_high=raw.high if raw else nan,
        interval=ci.kind if ci else "welch",
        skew_widened=judged["skew_widened"],
        level=ci.level if ci is not None else judged["level"],
        delta=judged["delta"],
        delta_source=judged["delta_source"],
        alpha=alpha,
        alpha_adjusted=judged["alpha_adjusted"],
        family_size=int(family_size),
        higher_is_better=higher_is_better,
        n_baseline=b_raw.n,
        n_candidate=c_raw.n,
        excluded_baseline=b_raw.excluded,
        excluded_candidate=c_raw.excluded,
        seeds_needed=judged["seeds_needed"],
        p_value=judged["p_value"],
        p_value_holm=_holm_single(judged["p_value"], int(family_size)),
        baseline=b_raw.to_dict(),
        candidate=c_raw.to_dict(),
        metric=metric,
        baseline_name=baseline_name,
        candidate_name=candidate_name,
        reasons=judged["reasons"],
        planned_n=planned_n,
        **extras,
    )


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def verdict(
    baseline: np.ndarray,
    candidate: np.ndarray,
    *,
    delta: float,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    family_size: int = 1,
    interval: str = "welch",
    planned_n: int | None = None,
    failed_baseline: int = 0,
    failed_candidate: int = 0,
    metric: str = "metric",
    baseline_name: str = "baseline",
    candidate_name: str = "candidate",
    bootstrap_seed: int = 0,
    bootstrap_resamples: int = 2000,
) -> Verdict:
    """Judge one candidate arm against the baseline from per-seed values (NaN/inf = diverged).

    ``delta`` is δ in metric units (required: a δ taken from the values being judged would be
    circular); ``family_size`` is how many candidates the entry ever ran; ``interval`` is "welch"
    (fixed plan) or "anytime" (after peeking; ``planned_n``, the registered seeds per arm, is then
    required: the sequence is tuned to it); ``failed_*`` count runs that ended without a value;
    ``bootstrap_resamples = 0`` skips the (reported, never deciding) bootstrap.
    Raises ValueError naming the argument for bad input.
    """
    _check_inputs(delta, alpha, family_size, interval, planned_n)
    sign = 1.0 if higher_is_better else -1.0
    b_values = np.asarray(baseline, dtype=float).ravel()
    c_values = np.asarray(candidate, dtype=float).ravel()
    b_raw, c_raw = summarize(b_values, failed_baseline), summarize(c_values, failed_candidate)
    b_fin, c_fin = sign * finite(b_values), sign * finite(c_values)
    b, c = oriented(b_raw, sign), oriented(c_raw, sign)
    skew_b, skew_c = sample_skewness(b_fin), sample_skewness(c_fin)
    skew_ci = None
    if interval == "welch" and b.n >= 3 and c.n >= 3 and max(abs(skew_b), abs(skew_c)) >= SKEW_THRESHOLD:
        skew_ci = skew_interval(b_fin, c_fin, 1 - 2 * alpha / family_size)
    judged = _judge(
        b, c, delta=delta, alpha=alpha, family_size=family_size, interval=interval, planned_n=planned_n,
        skew_ci=skew_ci, baseline_name=baseline_name, candidate_name=candidate_name,
    )
    extras: dict[str, Any] = {
        "prob_improvement": prob_improvement(b_fin, c_fin),
        "prob_improvement_method": "mann-whitney",
        "bootstrap_low": None,
        "bootstrap_high": None,
        "iqm_difference": iqm_difference(b_fin, c_fin) if b.n and c.n else None,
        # In the metric's own direction: a lopsided arm reads the same whichever way is better.
        "skewness_baseline": _finite_or_none(sign * skew_b),
        "skewness_candidate": _finite_or_none(sign * skew_c),
    }
    if b.n >= 2 and c.n >= 2 and bootstrap_resamples > 0:
        boot = bootstrap_interval(b_fin, c_fin, judged["level"], n_resamples=bootstrap_resamples, seed=bootstrap_seed)
        extras["bootstrap_low"], extras["bootstrap_high"] = boot.low, boot.high
    return _assemble(
        judged, b_raw=b_raw, c_raw=c_raw, higher_is_better=higher_is_better, alpha=alpha, family_size=family_size,
        extras=extras, metric=metric, baseline_name=baseline_name, candidate_name=candidate_name, planned_n=planned_n,
    )


def verdict_from_summary(
    baseline: tuple[float, float, int],
    candidate: tuple[float, float, int],
    *,
    delta: float,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    family_size: int = 1,
    metric: str = "metric",
    baseline_name: str = "baseline",
    candidate_name: str = "candidate",
) -> Verdict:
    """The same rule from a paper's table alone: ``(mean, sd, n)`` per arm.

    P(C > B) is then the normal approximation, and there is no bootstrap, IQM or skew check.
    """
    _check_inputs(delta, alpha, family_size, "welch")
    for name, (mean, sd, n) in (("baseline", baseline), ("candidate", candidate)):
        if not math.isfinite(mean):
            raise ValueError(f"{name}: expected a finite mean, got {mean!r}")
        if not (math.isfinite(sd) and sd >= 0):
            raise ValueError(f"{name}: expected a standard deviation ≥ 0, got {sd!r}")
        if isinstance(n, bool) or int(n) != n or n < 2:
            raise ValueError(f"{name}: expected n ≥ 2 seeds, got {n!r}")
    sign = 1.0 if higher_is_better else -1.0

    def arm(mean: float, sd: float, n: int) -> ArmSummary:
        nan = math.nan
        return ArmSummary(n=int(n), excluded=0, mean=mean, sd=sd, median=nan, iqm=nan, min=nan, max=nan)

    b_raw, c_raw = arm(*baseline), arm(*candidate)
    b, c = oriented(b_raw, sign), oriented(c_raw, sign)
    judged = _judge(
        b, c, delta=delta, alpha=alpha, family_size=family_size, interval="welch", planned_n=None,
        baseline_name=baseline_name, candidate_name=candidate_name,
    )
    extras = {
        "prob_improvement": prob_improvement_normal(b.mean, b.sd, c.mean, c.sd),
        "prob_improvement_method": "normal-approximation",
        "bootstrap_low": None,
        "bootstrap_high": None,
        "iqm_difference": None,
    }
    return _assemble(
        judged, b_raw=b_raw, c_raw=c_raw, higher_is_better=higher_is_better, alpha=alpha, family_size=family_size,
        extras=extras, metric=metric, baseline_name=baseline_name, candidate_name=candidate_name, planned_n=None,
    )


def family_verdicts(
    baseline: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    *,
    family_size: int | None = None,
    failed: Mapping[str, int] | None = None,
    **kwargs: Any,
) -> list[Verdict]:
    """Every candidate against the baseline as one family: ``α′ = α / m`` with ``m`` at least the
    number of candidates given (more when abandoned variants also count), and Holm-adjusted
    one-sided p-values across the candidates judged here (none beside an anytime interval).
    ``failed`` maps arm names (and ``"__baseline__"``) to counts of runs that ended without a value."""
    failed = dict(failed or {})
    m = max(family_size or 0, len(candidates), 1)
    results = [
        verdict(
            baseline, values, family_size=m, candidate_name=name, failed_baseline=failed.get("__baseline__", 0),
            failed_candidate=failed.get(name, 0), **kwargs,
        )
        for name, values in candidates.items()
    ]
    pvalues = np.array([math.nan if r.p_value is None else r.p_value for r in results], dtype=float)
    usable = np.isfinite(pvalues)
    adjusted: list[float | None] = [None if r.p_value is None else math.nan for r in results]
    if usable.any():
        # Holm over the m hypotheses of the family: untested members count as p = 1.
        padded = np.concatenate([pvalues[usable], np.ones(m - int(usable.sum()))])
        for index, value in zip(np.flatnonzero(usable), holm(padded)[: int(usable.sum())]):
            adjusted[int(index)] = float(value)
    return [replace(r, p_value_holm=a) for r, a in zip(results, adjusted)]
