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
    prediction_difference, prob_improvement, seeds_needed, summarize, top1_churn, verdict, verdict_from_summary,
    welch_interval, welch_p_greater, welch_power, within_arm,
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
    n = seeds_needed(d * sd, sd, sd, alpha, power=0.8, minimum=2)
    solved = TTestIndPower().solve_power(effect_size=d, alpha=alpha, power=0.8, alternative="larger")
    assert n == max(2, math.ceil(solved - 1e-9))
    for k in (3, 8, 20):
        ours = welch_power(d * sd, sd, sd, k, alpha)
        assert ours == pytest.approx(TTestIndPower().power(d, k, alpha, alternative="larger"), rel=1e-8)


def test_seeds_needed_when_nothing_can_settle_it():
    assert seeds_needed(0.0, 1.0, 1.0, 0.05) is None


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
    tau2 = moments(b)[1] ** 2 / n0 + moments(c)[1] ** 2 / n0
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
        v = verdict(const(1.0, 5, 0.3), const(1.1, 5, 0.3), delta=0.1)
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

    def test_default_delta_is_labelled(self):
        v = verdict(const(1.0, 10), const(1.0, 10))
        assert v.delta_source == "default" and "default rule" in v.sentence

    @pytest.mark.parametrize("kwargs", [{"alpha": 0.5}, {"alpha": 0}, {"family_size": 0}, {"delta": -1.0}, {"interval": "x"}])
    def test_bad_arguments(self, kwargs):
        with pytest.raises(ValueError):
            verdict(const(1.0, 5), const(1.0, 5), **kwargs)

    def test_to_dict_has_the_documented_keys(self):
        d = verdict(const(1.0, 6), const(1.1, 6), delta=0.05).to_dict()
        for key in ("verdict", "detail", "effect", "ci_low", "ci_high", "interval", "delta", "delta_source", "alpha",
                    "alpha_adjusted", "n_baseline", "n_candidate", "excluded_baseline", "excluded_candidate",
                    "seeds_needed", "prob_improvement", "sentence"):
            assert key in d


def test_summary_verdict_equals_array_verdict_on_the_same_moments():
    b, c = const(0.5, 12, 0.05, seed=4), const(0.47, 9, 0.04, seed=5)
    from_arrays = verdict(b, c, delta=0.01, higher_is_better=False)
    from_table = verdict_from_summary(moments(b), moments(c), delta=0.01, higher_is_better=False)
    for key in ("verdict", "detail", "effect", "ci_low", "ci_high", "seeds_needed", "p_value"):
        assert getattr(from_table, key) == pytest.approx(getattr(from_arrays, key)), key
    assert from_table.prob_improvement_method == "normal-approximation"


def test_summary_verdict_rejects_bad_numbers():
    with pytest.raises(ValueError):
        verdict_from_summary((1.0, -0.1, 5), (1.0, 0.1, 5))
    with pytest.raises(ValueError):
        verdict_from_summary((1.0, 0.1, 1), (1.0, 0.1, 5))


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
    assert verdict(np.multiply(b, k), np.multiply(c, k)).delta == pytest.approx(k * verdict(b, c).delta, rel=1e-9)


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
