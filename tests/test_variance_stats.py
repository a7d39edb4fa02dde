"""The variance decomposition against independent computations: NumPy/`statistics` for the
point values and SciPy's bootstrap for the intervals, on the same numbers."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy import stats as sps

from logbook.stats.variance import ALL, decompose, sample_sd, sd_interval, sources_that_matter


def groups() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "init": rng.normal(0.5, 0.02, 12),
        "data": rng.normal(0.5, 0.10, 12),
        ALL: rng.normal(0.5, 0.102, 12),
    }


def test_sd_and_share_match_an_independent_computation():
    g = groups()
    result = decompose(g, n_resamples=500)
    for name, values in g.items():
        assert result[name].sd == pytest.approx(statistics.stdev(values.tolist()), rel=1e-12)
        assert result[name].n == 12
        expected_share = statistics.variance(values.tolist()) / statistics.variance(g[ALL].tolist())
        assert result[name].share == pytest.approx(expected_share, rel=1e-12)
    assert result[ALL].share == pytest.approx(1.0)
    assert sources_that_matter(result) == ["data"]


def test_sd_interval_agrees_with_scipy_percentile_bootstrap():
    values = np.random.default_rng(3).normal(0.0, 2.0, 30)
    low, high = sd_interval(values, n_resamples=20000, seed=1)
    ref = sps.bootstrap((values,), lambda x, axis: np.std(x, ddof=1, axis=axis), method="percentile",
                        n_resamples=20000, confidence_level=0.95, random_state=2).confidence_interval
    assert low == pytest.approx(ref.low, rel=0.03)
    assert high == pytest.approx(ref.high, rel=0.03)
    assert low < sample_sd(values) < high


def test_share_interval_agrees_with_a_separately_written_bootstrap():
    g = groups()
    result = decompose(g, n_resamples=20000, seed=5)
    rng = np.random.default_rng(11)
    ratios = []
    for _ in range(20000):
        a = rng.choice(g["data"], size=12, replace=True)
        b = rng.choice(g[ALL], size=12, replace=True)
        ratios.append(np.var(a, ddof=1) / np.var(b, ddof=1))
    low, high = np.percentile(ratios, [2.5, 97.5])
    assert result["data"].share_low == pytest.approx(low, rel=0.05)
    assert result["data"].share_high == pytest.approx(high, rel=0.05)


def test_non_finite_values_are_left_out_and_tiny_groups_give_nan():
    result = decompose({"init": np.array([1.0, np.nan, 2.0, 3.0]), "noise": np.array([1.0]), ALL: np.array([0.0, 2.0, 4.0])},
                       n_resamples=100)
    assert result["init"].n == 3
    assert result["init"].sd == pytest.approx(1.0)
    assert result["init"].share == pytest.approx(1.0 / 4.0)
    assert math.isnan(result["noise"].sd) and math.isnan(result["noise"].share)
    assert sources_that_matter(result) == ["init"]


def test_without_an_all_group_shares_are_nan():
    result = decompose({"init": np.array([1.0, 2.0, 3.0])}, n_resamples=50)
    assert result["init"].sd == pytest.approx(1.0)
    assert math.isnan(result["init"].share)
