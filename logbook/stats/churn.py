"""Prediction difference and churn between models trained on different seeds.

Two models with the same accuracy can disagree on many individual examples; Shamir, Lin and
Coviello, "Smooth activations and reproducibility in deep networks" (arXiv:2010.09931), measure
this *irreproducibility* by the prediction difference (PD) between models trained identically
apart from randomness. Definitions used here, for two models' predicted class probabilities
``P, Q`` of shape ``[examples, classes]`` on the same fixed evaluation set of ``N`` examples:

- absolute prediction difference: ``Δ₁ = (1/N) Σₙ ½ Σⱼ |Pₙⱼ − Qₙⱼ|``, the mean total-variation
  distance between the two predictive distributions; for two classes it is ``(1/N) Σₙ |pₙ − qₙ|``
  on the positive-class probability, the paper's binary Δ₁. It lies in [0, 1].
- top-1 churn: ``(1/N) Σₙ 1[argmaxⱼ Pₙⱼ ≠ argmaxⱼ Qₙⱼ]``, the fraction of examples whose
  predicted class differs.

Over an arm's seeds the measure is averaged over all unordered pairs of distinct models; between
two arms, over all cross pairs. The bootstrap resamples *models* (seeds), which is where the
randomness under study lives, not examples.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np


def _as_probabilities(p: np.ndarray) -> np.ndarray:
    """``[N]`` positive-class probabilities become ``[N, 2]``; ``[N, K]`` is returned as is."""
    p = np.asarray(p, dtype=float)
    if p.ndim == 1:
        return np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2:
        raise ValueError(f"predictions: expected shape [examples] or [examples, classes], got {p.shape}")
    return p


def are_probabilities(p: np.ndarray, atol: float = 1e-3) -> bool:
    """Whether saved predictions are class probabilities (``[N]`` in [0, 1], or ``[N, K]`` rows in
    [0, 1] summing to 1): regression outputs are not, and churn means nothing for them."""
    p = np.asarray(p)
    if p.ndim not in (1, 2) or p.size == 0 or not np.issubdtype(p.dtype, np.number):
        return False
    p = p.astype(float)
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        return False
    return p.ndim == 1 or bool(np.allclose(p.sum(axis=1), 1.0, atol=atol))


def prediction_difference(p: np.ndarray, q: np.ndarray) -> float:
    """Absolute prediction difference Δ₁ between two models' probabilities (see module docstring)."""
    p, q = _as_probabilities(p), _as_probabilities(q)
    if p.shape != q.shape:
        raise ValueError(f"predictions: expected equal shapes, got {p.shape} and {q.shape}")
    return float(0.5 * np.abs(p - q).sum(axis=1).mean())


def top1_churn(p: np.ndarray, q: np.ndarray) -> float:
    """Fraction of examples whose arg-max class differs between the two models."""
    p, q = _as_probabilities(p), _as_probabilities(q)
    if p.shape != q.shape:
        raise ValueError(f"predictions: expected equal shapes, got {p.shape} and {q.shape}")
    return float(np.mean(p.argmax(axis=1) != q.argmax(axis=1)))


def _pair_matrix(a: list[np.ndarray], b: list[np.ndarray], measure) -> np.ndarray:  # noqa: ANN001
    return np.array([[measure(x, y) for y in b] for x in a], dtype=float)


@dataclass(frozen=True)
class PairwiseResult:
    """A pairwise measure's mean over model pairs, with a bootstrap interval over models."""

    mean: float
    low: float
    high: float
    pairs: int


def _bootstrap_within(matrix: np.ndarray, level: float, n_resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    k = matrix.shape[0]
    stats = []
    for _ in range(n_resamples):
        idx = rng.integers(0, k, size=k)
        sub = matrix[np.ix_(idx, idx)]
        off = ~np.eye(k, dtype=bool) & (idx[:, None] != idx[None, :])  # pairs of distinct models
        if off.any():
            stats.append(sub[off].mean())
    if not stats:
        return math.nan, math.nan
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def within_arm(predictions: list[np.ndarray], measure=prediction_difference, level: float = 0.95,  # noqa: ANN001
               n_resamples: int = 1000, seed: int = 0) -> PairwiseResult:
    """Mean of ``measure`` over all unordered pairs of an arm's models, with a bootstrap over models."""
    k = len(predictions)
    if k < 2:
        return PairwiseResult(math.nan, math.nan, math.nan, 0)
    matrix = _pair_matrix(predictions, predictions, measure)
    upper = matrix[np.triu_indices(k, 1)]
    low, high = _bootstrap_within(matrix, level, n_resamples, np.random.default_rng(seed))
    return PairwiseResult(float(upper.mean()), low, high, int(upper.size))


def between_arms(a: list[np.ndarray], b: list[np.ndarray], measure=prediction_difference, level: float = 0.95,  # noqa: ANN001
                 n_resamples: int = 1000, seed: int = 0) -> PairwiseResult:
    """Mean of ``measure`` over all pairs (one model from each arm), with a bootstrap over models."""
    if not a or not b:
        return PairwiseResult(math.nan, math.nan, math.nan, 0)
    matrix = _pair_matrix(a, b, measure)
    rng = np.random.default_rng(seed)
    stats = [
        matrix[np.ix_(rng.integers(0, len(a), len(a)), rng.integers(0, len(b), len(b)))].mean()
        for _ in range(n_resamples)
    ]
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return PairwiseResult(float(matrix.mean()), float(low), float(high), int(matrix.size))


def all_pairs(models: dict[str, list[np.ndarray]], measure=prediction_difference) -> dict[str, PairwiseResult]:  # noqa: ANN001
    """``measure`` within each arm and between each pair of arms, keyed "arm" or "arm|other"."""
    out = {name: within_arm(preds, measure) for name, preds in models.items()}
    for (x, px), (y, py) in itertools.combinations(models.items(), 2):
        out[f"{x}|{y}"] = between_arms(px, py, measure)
    return out
