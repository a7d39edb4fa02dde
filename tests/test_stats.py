"""Statistics checked against independent implementations (SciPy, statsmodels) and by invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.weightstats import ttost_ind

from logbook.stats import (
    anytime_interval, between_arms, bootstrap_interval, default_delta, family_verdicts, holm, interquartile_mean,
    mixture_ratio, prediction_difference, prob_improvement, seeds_needed, summarize, top1_churn, verdict,
    verdict_from_summary, welch_interval, welch_p_greater, welch_power, welch_seeds_needed, within_arm,
)

RNG = np.random.default_rng(20261122)


def arms(n_b=10, n_c=12, shift=0.3, sd_b=1.0, sd_c=1.5):
    return RNG.normal(0, sd_b, n_b), RNG.normal(shift, sd_c, n_c)


def moments(x):
    return float(np.mean(x)), float(np.std(x, ddof=1)), len(x)


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95, 0.99])
def test_welch_interval_matches_scipy(level):
    for _ in range(20):
        b, c = arms(int(RNG.integers(3, 30)), int(RNG.integers(3, 30)), shift=RNG.normal())
        ours = welch_interval(*moments(b), *moments(c), level)
        ref = st.ttest_ind(c, b, equal_var=False).confidence_interval(level)
        assert ours.low == pytest.approx(ref.low, rel=1e-10, abs=1e-12)
        assert ours.high == pytest.approx(ref.high, rel=1e-10, abs=1e-12)


def test_one_sided_p_matches_scipy():
    for _ in range(20):
        b, c = arms(shift=RNG.normal(scale=0.5))
        ours = welch_p_greater(*moments(b), *moments(c))
        assert ours == pytest.approx(st.ttest_ind(c, b, equal_var=False, alternative="greater").pvalue, rel=1e-10)


def test_equivalent_label_matches_statsmodels_tost():
    """Negative with L > −δ is exactly TOST rejecting both one-sided nulls at α′."""
    alpha, delta = 0.05, 0.5
    agreements = 0
    for _ in range(200):
        b, c = arms(10, 10, shift=RNG.uniform(-0.6, 0.6), sd_b=0.4, sd_c=0.4)
        v = verdict(b, c, delta=delta, alpha=alpha)
        p_tost = ttost_ind(c, b, -delta, delta, usevar="unequal")[0]
        inside = v.ci_low > -delta and v.ci_high < delta
        if v.skew_widened:  # the skew-corrected bound is more conservative: inside implies TOST rejects
            assert not inside or p_tost < alpha
            continue
        assert inside == (p_tost < alpha)
        if inside:
            assert v.verdict == "negative"
            agreements += 1
    assert agreements > 10  # the check exercised both outcomes


def test_holm_matches_statsmodels():
    for m in (1, 2, 5, 20):
        p = RNG.uniform(0, 0.2, m)
        assert np.allclose(holm(p), multipletests(p, method="holm")[1])


def test_prob_improvement_matches_mann_whitney_with_ties():
    b = np.array([1, 2, 2, 3, 4, 4, 4, 5.0])
    c = np.array([2, 3, 4, 4, 6, 7.0])
    ref = st.mannwhitneyu(c, b).statistic / (c.size * b.size)
    assert prob_improvement(b, c) == pytest.approx(ref)
    brute = np.mean([(x > y) + 0.5 * (x == y) for x in c for y in b])
    assert prob_improvement(b, c) == pytest.approx(brute)


def test_iqm_matches_scipy_trim_mean():
    for n in (4, 5, 9, 10, 33):
        x = RNG.standard_cauchy(n)
        assert interquartile_mean(x) == pytest.approx(st.trim_mean(x, 0.25))


@pytest.mark.parametrize(("d", "alpha"), [(0.5, 0.05), (1.0, 0.025), (0.3, 0.01), (2.0, 0.05)])
def test_seeds_needed_matches_statsmodels_power(d, alpha):
    sd = 1.7
    n = welch_seeds_needed(d * sd, sd, sd, alpha, power=0.8, minimum=2)
    solved = TTestIndPower().solve_power(effect_size=d, alpha=alpha, power=0.8, alternative="larger")
    assert n == max(2, math.ceil(solved - 1e-9))
    for k in (3, 8, 20):
        ours = welch_power(d * sd, sd, sd, k, alpha)
        assert ours == pytest.approx(TTestIndPower().power(d, k, alpha, alternative="larger"), rel=1e-8)


def test_seeds_needed_when_nothing_can_settle_it():
    assert welch_seeds_needed(0.0, 1.0, 1.0, 0.05) is None
    # A true effect of exactly δ: the estimate falls short of δ half the time, so the rule's
    # positive (which needs Δ̂ ≥ δ) never reaches probability 0.8, however many seeds.
    assert seeds_needed(0.5, 0.5, 1.0, 1.0, 0.05, planned_n=10) is None


def test_default_delta_is_the_three_in_four_shift():
    b, c = arms(12, 9)
    (_, sb, nb), (_, sc, nc) = moments(b), moments(c)
    pooled = math.sqrt(((nb - 1) * sb**2 + (nc - 1) * sc**2) / (nb + nc - 2))
    delta = default_delta(sb, nb, sc, nc)
    assert delta == pytest.approx(0.9539 * pooled, rel=1e-4)
    # Shifting a normal distribution by δ makes a random candidate beat a random baseline 3 in 4.
    assert st.norm.cdf(delta / (math.sqrt(2) * pooled)) == pytest.approx(0.75)


def test_anytime_interval_is_the_normal_mixture_boundary():
    """At the interval's ends the mixture likelihood ratio equals 1/α (Ville's threshold)."""
    b, c = arms(15, 15)
    alpha, n0 = 0.05, 10
    ci = anytime_interval(*moments(b), *moments(c), alpha, planned_n=n0)
    v = ci.se**2
    # The mixing variance is a multiple r of the plan's variance, r the root of r = log(1+r) + 2 log(1/α)
    # (where the boundary's width at the plan is smallest), found here by SciPy's root finder.
    from scipy.optimize import brentq

    r = brentq(lambda x: x - math.log1p(x) - 2 * math.log(1 / alpha), 1e-6, 1e3)
    assert mixture_ratio(alpha) == pytest.approx(r, rel=1e-10)
    tau2 = r * (moments(b)[1] ** 2 / n0 + moments(c)[1] ** 2 / n0)
    for end in (ci.low, ci.high):
        z2 = (ci.effect - end) ** 2
        ratio = math.sqrt(v / (v + tau2)) * math.exp(z2 * tau2 / (2 * v * (v + tau2)))
        assert ratio == pytest.approx(1 / alpha, rel=1e-9)
    welch = welch_interval(*moments(b), *moments(c), 1 - 2 * alpha)
    assert ci.low < welch.low and ci.high > welch.high  # the price of peeking


def test_bootstrap_interval_agrees_with_scipy_percentile_bootstrap():
    b, c = arms(20, 20)
    ours = bootstrap_interval(b, c, 0.9, n_resamples=20000, seed=1)
    ref = st.bootstrap(
        (c, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis), confidence_level=0.9,
        method="percentile", n_resamples=20000, rng=np.random.default_rng(2),
    ).confidence_interval
    width = ref.high - ref.low
    assert abs(ours.low - ref.low) < 0.05 * width and abs(ours.high - ref.high) < 0.05 * width
    assert bootstrap_interval(b, c, 0.9, seed=3) == bootstrap_interval(b, c, 0.9, seed=3)


def const(mean, n, sd=0.1, seed=0):
    """n values with exactly this mean and sample sd (so tests control the interval)."""
    z = np.random.default_rng(seed).normal(size=n)
    z = (z - z.mean()) / z.std(ddof=1)
    return mean + sd * z


class TestRule:
    def test_worse(self):
        v = verdict(const(1.0, 10), const(0.8, 10), delta=0.05)
        assert (v.verdict, v.detail) == ("negative", "worse") and v.ci_high < 0

    def test_equivalent(self):
        v = verdict(const(1.0, 30, 0.02), const(1.001, 30, 0.02), delta=0.05)
        assert (v.verdict, v.detail) == ("negative", "equivalent")

    def test_real_but_smaller_than_delta(self):
        v = verdict(const(1.0, 40, 0.01), const(1.02, 40, 0.01), delta=0.05)
        assert (v.verdict, v.detail) == ("negative", "real but smaller than δ") and v.ci_low > 0

    def test_positive_and_strong(self):
        assert verdict(const(1.0, 10, 0.1), const(1.2, 10, 0.1), delta=0.15).detail == "positive"
        strong = verdict(const(1.0, 30, 0.02), const(1.2, 30, 0.02), delta=0.1)
        assert (strong.verdict, strong.detail) == ("positive", "strong") and strong.ci_low >= 0.1

    def test_inconclusive_says_how_many_seeds(self):
        v = verdict(const(1.0, 5, 0.3), const(1.2, 5, 0.3), delta=0.1)
        assert v.verdict == "inconclusive" and v.seeds_needed > 5
        assert f"about {v.seeds_needed} seeds per arm" in v.sentence

    def test_too_few_seeds(self):
        v = verdict(const(1.0, 4), const(2.0, 10), delta=0.1)
        assert v.verdict == "inconclusive" and v.detail.startswith("too few seeds") and v.seeds_needed >= 5

    def test_diverged_seeds_are_excluded_and_counted(self):
        c = np.concatenate([const(1.3, 8), [np.nan, np.inf]])
        v = verdict(const(1.0, 8), c, delta=0.1)
        assert (v.n_candidate, v.excluded_candidate) == (8, 2)
        assert v.verdict == "inconclusive" and "failed or diverged on 2 seeds" in v.detail

    def test_failed_runs_block_a_positive_too(self):
        v = verdict(const(1.0, 8), const(1.3, 8), delta=0.1, failed_candidate=1)
        assert v.verdict == "inconclusive" and v.excluded_candidate == 1

    def test_lower_is_better_orients_the_effect(self):
        v = verdict(const(1.0, 10), const(0.7, 10), delta=0.1, higher_is_better=False, metric="val_loss")
        assert v.verdict == "positive" and v.effect == pytest.approx(0.3) and v.raw_effect == pytest.approx(-0.3)
        assert v.raw_ci_low < v.raw_ci_high < 0
        assert "Reductions of val_loss larger than" in v.sentence

    def test_every_sentence_rules_out_gains_above_the_upper_bound(self):
        for shift in (-0.5, 0.0, 0.05, 0.5):
            v = verdict(const(1.0, 10), const(1.0 + shift, 10), delta=0.1)
            assert "are ruled out" in v.sentence or "No improvement" in v.sentence

    def test_bonferroni_over_the_family(self):
        b, c = const(1.0, 10), const(1.12, 10)
        single, family = verdict(b, c, delta=0.05), verdict(b, c, delta=0.05, family_size=5)
        assert family.alpha_adjusted == pytest.approx(0.01) and family.level == pytest.approx(0.98)
        assert family.ci_low < single.ci_low and family.ci_high > single.ci_high

    def test_family_holm_p_values(self):
        b = const(1.0, 10)
        cands = {"a": const(1.2, 10, seed=1), "b": const(1.05, 10, seed=2), "c": const(0.9, 10, seed=3)}
        results = family_verdicts(b, cands, delta=0.05, family_size=4)
        p = [r.p_value for r in results]
        expected = multipletests(p + [1.0], method="holm")[1][:3]
        assert np.allclose([r.p_value_holm for r in results], expected)
        assert all(r.family_size == 4 for r in results)

    def test_delta_is_required(self):
        with pytest.raises(TypeError):
            verdict(const(1.0, 10), const(1.0, 10))  # no data-derived default
        with pytest.raises(ValueError, match="delta: expected δ"):
            verdict(const(1.0, 10), const(1.0, 10), delta=None)
        with pytest.raises(ValueError, match="delta: expected δ"):
            verdict_from_summary((1.0, 0.1, 10), (1.1, 0.1, 10), delta=None)

    @pytest.mark.parametrize("kwargs", [
        {"alpha": 0.5}, {"alpha": 0}, {"family_size": 0}, {"delta": -1.0}, {"interval": "x"},
        {"interval": "anytime"}, {"interval": "anytime", "planned_n": 1},
    ])
    def test_bad_arguments(self, kwargs):
        with pytest.raises(ValueError):
            verdict(const(1.0, 5), const(1.0, 5), **{"delta": 0.1, **kwargs})

    def test_the_guard_works_both_ways_and_names_the_arm(self):
        """A baseline that lost more seeds than the candidate cannot make the candidate negative."""
        b = np.concatenate([const(1.3, 8), [np.nan, np.nan]])
        v = verdict(b, const(1.0, 10), delta=0.1, baseline_name="lstm", candidate_name="gated")
        assert v.verdict == "inconclusive" and v.ci_high < 0.1  # the interval alone would say negative
        assert "the baseline (lstm) failed or diverged on 2 seeds against 0" in v.detail
        c = np.concatenate([const(1.3, 8), [np.nan]])
        v = verdict(const(1.0, 8), c, delta=0.1, baseline_name="lstm", candidate_name="gated")
        assert v.verdict == "inconclusive" and "the candidate (gated) failed or diverged on 1 seeds" in v.detail

    def test_holm_of_a_single_verdict_counts_the_family(self):
        b, c = const(1.0, 10), const(1.08, 10)
        v = verdict(b, c, delta=0.05, family_size=4)
        assert v.p_value_holm == pytest.approx(multipletests([v.p_value, 1, 1, 1], method="holm")[1][0])
        assert v.p_value_holm == pytest.approx(min(1.0, 4 * v.p_value)) and v.p_value_holm > v.p_value

    def test_no_fixed_n_p_value_beside_an_anytime_interval(self):
        b, c = const(1.0, 12), const(1.3, 12)
        v = verdict(b, c, delta=0.1, interval="anytime", planned_n=20)
        assert v.interval == "anytime" and v.p_value is None and v.p_value_holm is None
        fixed = verdict(b, c, delta=0.1)
        assert fixed.p_value == pytest.approx(st.ttest_ind(c, b, equal_var=False, alternative="greater").pvalue)
        family = family_verdicts(b, {"x": c, "y": c}, delta=0.1, interval="anytime", planned_n=20)
        assert all(r.p_value is None and r.p_value_holm is None for r in family)

    def test_too_few_seeds_claims_nothing_is_ruled_out(self):
        v = verdict(const(1.0, 4), const(1.1, 4), delta=0.1)
        assert v.detail.startswith("too few seeds") and "ruled out" not in v.sentence

    def test_the_family_is_stated_in_the_sentence(self):
        assert "Judged as the only variant tried (family of 1)." in verdict(const(1.0, 6), const(1.1, 6), delta=0.1).sentence
        assert "Judged as one of 3 variants tried" in verdict(const(1.0, 6), const(1.1, 6), delta=0.1, family_size=3).sentence

    def test_to_dict_has_the_documented_keys(self):
        d = verdict(const(1.0, 6), const(1.1, 6), delta=0.05).to_dict()
        for key in ("verdict", "detail", "effect", "ci_low", "ci_high", "interval", "skew_widened", "delta", "delta_source", "alpha",
                    "alpha_adjusted", "n_baseline", "n_candidate", "excluded_baseline", "excluded_candidate",
                    "seeds_needed", "prob_improvement", "sentence"):
            assert key in d


def test_summary_verdict_equals_array_verdict_on_the_same_moments():
    b, c = const(0.5, 12, 0.05, seed=4), const(0.47, 9, 0.04, seed=5)
    from_arrays = verdict(b, c, delta=0.01, higher_is_better=False)
    assert not from_arrays.skew_widened  # a table has no skewness: compare where the arrays show none either
    from_table = verdict_from_summary(moments(b), moments(c), delta=0.01, higher_is_better=False)
    for key in ("verdict", "detail", "effect", "ci_low", "ci_high", "seeds_needed", "p_value"):
        assert getattr(from_table, key) == pytest.approx(getattr(from_arrays, key)), key
    assert from_table.prob_improvement_method == "normal-approximation"


def test_summary_verdict_rejects_bad_numbers():
    with pytest.raises(ValueError):
        verdict_from_summary((1.0, -0.1, 5), (1.0, 0.1, 5), delta=0.1)
    with pytest.raises(ValueError):
        verdict_from_summary((1.0, 0.1, 1), (1.0, 0.1, 5), delta=0.1)


finite_floats = hs.floats(min_value=-100, max_value=100, allow_nan=False)
samples = hs.lists(finite_floats, min_size=5, max_size=15).filter(lambda xs: np.std(xs) > 1e-3)


@settings(max_examples=60, deadline=None)
@given(samples, samples, hs.floats(min_value=0, max_value=5))
def test_swapping_arms_flips_the_effect(b, c, delta):
    forward, backward = verdict(b, c, delta=delta), verdict(c, b, delta=delta)
    assert forward.effect == pytest.approx(-backward.effect, abs=1e-9)
    assert forward.ci_low == pytest.approx(-backward.ci_high, abs=1e-9)
    assert forward.prob_improvement == pytest.approx(1 - backward.prob_improvement, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(samples, samples, hs.floats(min_value=-1000, max_value=1000), hs.floats(min_value=0, max_value=5))
def test_shifting_both_arms_changes_nothing(b, c, shift, delta):
    base = verdict(b, c, delta=delta)
    moved = verdict(np.add(b, shift), np.add(c, shift), delta=delta)
    assert moved.verdict == base.verdict or abs(base.ci_high - delta) < 1e-6 or abs(base.ci_low) < 1e-6
    assert moved.effect == pytest.approx(base.effect, abs=1e-6)
    assert moved.ci_low == pytest.approx(base.ci_low, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(samples, samples, hs.floats(min_value=0.01, max_value=100), hs.floats(min_value=0, max_value=5))
def test_scaling_scales_effect_and_delta(b, c, k, delta):
    base = verdict(b, c, delta=delta)
    scaled = verdict(np.multiply(b, k), np.multiply(c, k), delta=delta * k)
    assert scaled.effect == pytest.approx(k * base.effect, rel=1e-9, abs=1e-9)
    assert scaled.ci_high == pytest.approx(k * base.ci_high, rel=1e-9, abs=1e-9)
    assert scaled.verdict == base.verdict or abs(base.ci_high - delta) < 1e-9 * (1 + delta)
    assert scaled.skew_widened == base.skew_widened


def test_summarize_counts_excluded():
    s = summarize(np.array([1.0, 2.0, np.nan, 3.0, np.inf]), failed=2)
    assert (s.n, s.excluded, s.mean, s.median) == (3, 4, 2.0, 2.0)


class TestChurn:
    def test_binary_prediction_difference_is_mean_absolute_difference(self):
        p, q = RNG.uniform(size=50), RNG.uniform(size=50)
        assert prediction_difference(p, q) == pytest.approx(np.mean(np.abs(p - q)))

    def test_multiclass_is_total_variation_and_churn_counts_argmax_flips(self):
        p = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.3, 0.3, 0.4]])
        q = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6], [0.3, 0.3, 0.4]])
        assert prediction_difference(p, q) == pytest.approx((0.1 + 0.2 + 0.0) / 3)
        assert top1_churn(p, q) == pytest.approx(1 / 3)

    def test_within_and_between_average_over_pairs(self):
        models = [RNG.dirichlet(np.ones(4), size=30) for _ in range(4)]
        others = [RNG.dirichlet(np.ones(4), size=30) for _ in range(3)]
        within = within_arm(models)
        pairs = [prediction_difference(models[i], models[j]) for i in range(4) for j in range(i + 1, 4)]
        assert within.mean == pytest.approx(np.mean(pairs)) and within.pairs == 6
        between = between_arms(models, others, top1_churn)
        assert between.mean == pytest.approx(np.mean([top1_churn(a, b) for a in models for b in others]))
        assert within.low <= within.high and between.low <= between.high

    def test_identical_models_have_no_difference(self):
        p = RNG.dirichlet(np.ones(3), size=20)
        assert within_arm([p, p.copy(), p.copy()]).mean == 0.0


def hand_skew_interval(b, c, level, k=4.0):
    """An independent reference for the skew-corrected interval: SciPy's unbiased third cumulant
    (k-statistic), SciPy's Welch degrees of freedom and t quantile."""
    n_b, n_c = len(b), len(c)
    se = math.sqrt(np.var(b, ddof=1) / n_b + np.var(c, ddof=1) / n_c)
    g = (st.kstat(c, 3) / n_c**2 - st.kstat(b, 3) / n_b**2) / se**3
    welch = st.ttest_ind(c, b, equal_var=False)
    t = st.t.ppf((1 + level) / 2, welch.df)
    shift = k * g * (2 * t * t + 1) / 6
    d = np.mean(c) - np.mean(b)
    return d - (t - shift) * se, d + (t + shift) * se


def test_skew_interval_matches_a_hand_written_reference():
    from logbook.stats import skew_interval

    rng = np.random.default_rng(3)
    for n_b, n_c in ((5, 5), (8, 12), (30, 30)):
        b, c = rng.normal(0, 1, n_b), -rng.lognormal(0, 1, n_c)
        ours = skew_interval(b, c, 0.9)
        assert (ours.low, ours.high) == pytest.approx(hand_skew_interval(b, c, 0.9), rel=1e-10)


def test_skewed_candidate_widens_the_interval_and_says_so():
    """"Usually a bit better, sometimes collapses": the lower bound drops below Welch's."""
    rng = np.random.default_rng(4)
    b = rng.normal(0, 1, 10)
    c = np.concatenate([rng.normal(1.2, 0.3, 9), [-6.0]])
    v = verdict(b, c, delta=0.2)
    welch = st.ttest_ind(c, b, equal_var=False).confidence_interval(0.9)
    low, _ = hand_skew_interval(b, c, 0.9)
    assert v.skew_widened and v.ci_low == pytest.approx(min(welch.low, low)) and v.ci_low < welch.low
    assert v.ci_high == pytest.approx(welch.high)  # the other side keeps Welch's bound (it is the wider one there)
    assert "skewed" in v.sentence and v.skewness_candidate < -0.8


def test_symmetric_seeds_keep_welch_exactly():
    b, c = const(1.0, 12, seed=7), const(1.1, 12, seed=8)
    assert abs(st.skew(b, bias=False)) < 0.8 and abs(st.skew(c, bias=False)) < 0.8
    v = verdict(b, c, delta=0.05)
    ref = st.ttest_ind(c, b, equal_var=False).confidence_interval(0.9)
    assert not v.skew_widened and (v.ci_low, v.ci_high) == pytest.approx((ref.low, ref.high))


def test_skewed_null_positive_rate_is_within_alpha_plus_a_hundredth():
    """Left-skewed candidate (negated lognormal, σ = 1) against a normal baseline, equal means:
    one-sided Welch alone gives about 0.075; the rule must stay within α + 0.01."""
    rng = np.random.default_rng(11)
    cases, alpha = 1500, 0.05
    sd = math.sqrt((math.e - 1) * math.e)
    for n in (8, 15):
        hits = 0
        for _ in range(cases):
            c = -(rng.lognormal(0, 1, n) - math.exp(0.5)) / sd
            hits += verdict(rng.normal(0, 1, n), c, delta=0.0, alpha=alpha, bootstrap_resamples=0).verdict == "positive"
        assert hits / cases <= alpha + 0.01 + 1.96 * math.sqrt(0.06 * 0.94 / cases) / 2


def ref_anytime_half(v, v0, alpha):
    """The tuned normal-mixture half-width, written out again for the simulation below."""
    from scipy.optimize import brentq

    r = brentq(lambda x: x - math.log1p(x) - 2 * math.log(1 / alpha), 1e-6, 1e3)
    tau2 = r * v0
    return np.sqrt(v * (v + tau2) / tau2 * np.log((v + tau2) / (v * alpha**2)))


@pytest.mark.parametrize("effect", [0.0, 0.1, 0.25, 0.35, 0.65, 0.75, 1.0])
def test_running_the_advertised_seeds_settles_it(effect):
    """Seeds needed is computed for the rule that will judge a top-up (positive needs L > 0 and
    Δ̂ ≥ δ; the anytime interval tuned to the plan): running that many seeds per arm, with the
    spread estimated from the seeds, settles the question with probability ≥ 0.78 at true effects
    across 0…2δ (simulated here, vectorised, with a hand-written interval)."""
    delta, alpha, plan = 0.5, 0.05, 10
    n = seeds_needed(effect, delta, 1.0, 1.0, alpha, planned_n=plan)
    assert n is not None and n >= 5
    rng = np.random.default_rng(int(effect * 1000) + 1)
    reps = 10000 if n < 400 else 3000
    b, c = rng.normal(0, 1, (reps, n)), rng.normal(effect, 1, (reps, n))
    d = c.mean(1) - b.mean(1)
    h = ref_anytime_half(b.var(1, ddof=1) / n + c.var(1, ddof=1) / n, (b.var(1, ddof=1) + c.var(1, ddof=1)) / plan, alpha)
    settled = ((d - h > 0) & (d >= delta)) | (d + h < delta)
    assert settled.mean() >= 0.78
    # and it is the smallest such number (by the same normal calculation): one fewer falls short
    if n > 5:
        from logbook.stats import settle_probability

        assert settle_probability(effect, delta, 1.0, 1.0, n - 1, alpha, plan) < 0.8 <= settle_probability(effect, delta, 1.0, 1.0, n, alpha, plan)


def test_anytime_interval_spends_more_of_alpha_than_the_untuned_one():
    """Peeking after every seed pair from 5 to 40 under no difference, planned 15 per arm: the tuned
    sequence still stays within α/2 on a side (the other half is the final fixed-n look's), and
    rejects more often than the mixing variance of the plan alone did (r = 1)."""
    rng = np.random.default_rng(21)
    reps, alpha, plan = 3000, 0.05, 15
    b, c = rng.normal(0, 1, (reps, 40)), rng.normal(0, 1, (reps, 40))
    tuned = np.zeros(reps, bool)
    untuned = np.zeros(reps, bool)
    for n in range(5, 41):
        vb, vc = b[:, :n].var(1, ddof=1), c[:, :n].var(1, ddof=1)
        d = c[:, :n].mean(1) - b[:, :n].mean(1)
        v, v0 = (vb + vc) / n, (vb + vc) / plan
        tuned |= d - ref_anytime_half(v, v0, alpha) > 0
        untuned |= d - np.sqrt(v * (v + v0) / v0 * np.log((v + v0) / (v * alpha**2))) > 0
    assert tuned.mean() <= alpha / 2 + 0.01 and tuned.mean() > 2 * untuned.mean()
    x, y = rng.normal(0, 1, 12), rng.normal(0.3, 1, 12)
    ours = anytime_interval(*moments(x), *moments(y), alpha, planned_n=plan)
    v = ours.se**2
    assert ours.high - ours.effect == pytest.approx(ref_anytime_half(v, (np.var(x, ddof=1) + np.var(y, ddof=1)) / plan, alpha))


def test_seeds_needed_is_remembered_and_gives_the_uncached_answer():
    from logbook.stats import power

    rng = np.random.default_rng(7)
    for _ in range(40):
        effect, delta = rng.normal(0.2, 0.5), abs(rng.normal(0.3, 0.1))
        sd_b, sd_c = rng.uniform(0.2, 2.0, 2)
        direct = power._seeds_needed(effect, delta, sd_b, sd_c, 0.05, planned_n=10)
        assert seeds_needed(effect, delta, sd_b, sd_c, 0.05, planned_n=10) == direct
        hits = power._seeds_needed_cached.cache_info().hits
        assert seeds_needed(float(effect), float(delta), float(sd_b), float(sd_c), 0.05, planned_n=10) == direct
        assert power._seeds_needed_cached.cache_info().hits == hits + 1  # the repeat is not searched again
        assert seeds_needed(effect, delta, sd_b, sd_c, 0.05, planned_n=20) == power._seeds_needed(
            effect, delta, sd_b, sd_c, 0.05, planned_n=20)  # another plan is another question
    assert seeds_needed(0.3, 0.2, 0.0, 0.0, 0.05) == 5
    assert seeds_needed(float("nan"), 0.2, 1.0, 1.0, 0.05) is None
