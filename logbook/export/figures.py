"""Figures for writeups (matplotlib, Agg backend: no display needed). Nothing here imports Textual.

Each figure is written as PNG (for Markdown viewers), SVG, and PDF (for pdflatex); the SVG and
PDF carry no date and the SVG a fixed hash salt, so the same data gives the same file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from logbook.export.escape import terminal  # noqa: E402  (figure text: control characters shown, not drawn)

plt.rcParams["svg.hashsalt"] = "negative-results-logbook"
COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]


def _save(fig, stem: Path) -> list[Path]:  # noqa: ANN001
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})
    fig.savefig(paths[2], bbox_inches="tight", metadata={"CreationDate": None, "ModDate": None})
    plt.close(fig)
    return paths


def distribution(report: dict[str, Any], stem: Path) -> list[Path]:
    """Every seed of every arm (jittered strip) over a box plot; diverged and failed seeds are
    counted under their arm, never dropped silently."""
    entry, verdict = report["entry"], report["verdict"]
    arms = [a["name"] for a in entry["arms"]]
    fig, ax = plt.subplots(figsize=(max(3.5, 1.4 * len(arms) + 1.5), 3.6))
    rng = np.random.default_rng(0)  # jitter only: fixed so figures are reproducible
    finite_sets = []
    for i, arm in enumerate(arms):
        values = np.asarray([v for v in verdict["arms"][arm]["values"]], dtype=float)
        finite = values[np.isfinite(values)]
        finite_sets.append(finite)
        colour = COLOURS[i % len(COLOURS)]
        if finite.size:
            ax.scatter(i + rng.uniform(-0.12, 0.12, finite.size), finite, s=18, color=colour, alpha=0.85, zorder=3)
        bad = int(values.size - finite.size) + int(verdict["arms"][arm]["excluded"])
        label = f"{terminal(arm)}\nn={finite.size}" + (f", {bad} excluded" if bad else "")
        ax.text(i, -0.05, label, transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=8)
    boxes = [s if s.size else np.array([math.nan]) for s in finite_sets]
    ax.boxplot(boxes, positions=range(len(arms)), widths=0.45, showfliers=False, medianprops={"color": "black"})
    ax.set_xticks(range(len(arms)), [""] * len(arms))
    baseline = arms.index(entry["baseline"]) if entry["baseline"] in arms else 0
    delta = _delta(report)
    if finite_sets and finite_sets[baseline].size:
        # Zero and δ in the effect's terms: where a candidate's mean would sit for Δ = 0 and Δ = δ.
        zero = float(np.mean(finite_sets[baseline]))
        ax.axhline(zero, color="0.35", linestyle="--", linewidth=0.9, label="baseline mean (Δ = 0)", zorder=1)
        if delta is not None and math.isfinite(delta):
            better = -1.0 if entry["goal"] == "minimize" else 1.0
            ax.axhline(zero + better * delta, color="#c44e52", linestyle=":", linewidth=1.1,
                       label=f"baseline mean {'−' if better < 0 else '+'} δ (Δ = δ)", zorder=1)
        ax.legend(fontsize=7, loc="best", frameon=False)
    direction = "lower is better" if entry["goal"] == "minimize" else "higher is better"
    ax.set_ylabel(f"{terminal(entry['metric'])} ({direction})")
    ax.set_title(f"{terminal(entry['metric'])} per seed — {verdict['verdict']}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, stem)


def _delta(report: dict[str, Any]) -> float | None:
    """δ in metric units, as the verdict used it (the registered value)."""
    comparisons = report["verdict"]["comparisons"]
    if comparisons and comparisons[0].get("delta") is not None:
        return float(comparisons[0]["delta"])
    value = report["entry"].get("min_effect")
    return float(value) if isinstance(value, (int, float)) else None


def effects(report: dict[str, Any], stem: Path) -> list[Path]:
    """The forest plot reviewers expect for a negative or equivalence claim: each candidate's effect
    (better direction, metric units) with the interval the verdict used, against 0 and δ."""
    entry, comparisons = report["entry"], report["verdict"]["comparisons"]
    shown = [c for c in comparisons if c.get("effect") is not None and math.isfinite(c["effect"])]
    if not shown:
        return []
    delta = _delta(report)
    fig, ax = plt.subplots(figsize=(5.2, 0.9 + 0.55 * len(shown)))
    for row, c in enumerate(reversed(shown)):
        low = c["ci_low"] if math.isfinite(c["ci_low"]) else c["effect"]
        high = c["ci_high"] if math.isfinite(c["ci_high"]) else c["effect"]
        ax.plot([low, high], [row, row], color="black", linewidth=1.4, solid_capstyle="butt")
        ax.plot([c["effect"]], [row], marker="o", color=COLOURS[row % len(COLOURS)], markersize=6, zorder=3)
    ax.axvline(0.0, color="0.35", linestyle="--", linewidth=0.9, label="no effect (0)")
    if delta is not None and math.isfinite(delta):
        ax.axvline(delta, color="#c44e52", linestyle=":", linewidth=1.1, label="δ (smallest effect worth claiming)")
    ax.set_yticks(range(len(shown)), [f"{terminal(c['candidate_name'])}: {c['verdict']}" for c in reversed(shown)], fontsize=8)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    level = shown[0]["level"]
    kind = "anytime-valid" if shown[0]["interval"] == "anytime" else "Welch"
    ax.set_xlabel(f"effect on {terminal(entry['metric'])} vs {terminal(entry['baseline'])} (positive = better; {kind} {level:.0%} interval)",
                  fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    return _save(fig, stem)


def curves(report: dict[str, Any], stem: Path) -> list[Path]:
    """Learning curves, per arm, for up to three metrics: the mean over seeds, and a band from the
    lowest to the highest seed at each step (the same band the terminal app draws). The y axis is
    logarithmic when a metric's values are positive and span two decades or more."""
    names = list(report["curves"])
    if not names:
        return []
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    arms = [a["name"] for a in report["entry"]["arms"]]
    for ax, name in zip(axes[0], names):
        seen: list[np.ndarray] = []
        for i, arm in enumerate(arms):
            curve = report["curves"][name].get(arm)
            if not curve:
                continue
            steps = np.asarray(curve["steps"], dtype=float)
            mean = np.asarray(curve["mean"], dtype=float)
            low, high = np.asarray(curve["low"], dtype=float), np.asarray(curve["high"], dtype=float)
            colour = COLOURS[i % len(COLOURS)]
            ax.plot(steps, mean, color=colour, label=f"{terminal(arm)} (n={max(curve['seeds'])})", linewidth=1.4)
            ax.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
            seen += [low, high]
        if log_scale(seen):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(terminal(name))
        ax.set_title(f"{terminal(name)}: mean over seeds", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _save(fig, stem)


def log_scale(series: list[np.ndarray]) -> bool:
    """Whether a curve's values are all positive and span at least two decades."""
    values = np.concatenate([s[np.isfinite(s)] for s in series]) if series else np.array([])
    return bool(values.size) and bool((values > 0).all()) and float(values.max() / values.min()) >= 100.0
