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
        label = f"{arm}\nn={finite.size}" + (f", {bad} excluded" if bad else "")
        ax.text(i, -0.05, label, transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=8)
    boxes = [s if s.size else np.array([math.nan]) for s in finite_sets]
    ax.boxplot(boxes, positions=range(len(arms)), widths=0.45, showfliers=False, medianprops={"color": "black"})
    ax.set_xticks(range(len(arms)), [""] * len(arms))
    direction = "lower is better" if entry["goal"] == "minimize" else "higher is better"
    ax.set_ylabel(f"{entry['metric']} ({direction})")
    ax.set_title(f"{entry['metric']} per seed — {verdict['verdict']}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, stem)


def curves(report: dict[str, Any], stem: Path) -> list[Path]:
    """Learning curves: the mean over seeds with a ±1 sd band, per arm, for up to three metrics."""
    names = list(report["curves"])
    if not names:
        return []
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    arms = [a["name"] for a in report["entry"]["arms"]]
    for ax, name in zip(axes[0], names):
        for i, arm in enumerate(arms):
            curve = report["curves"][name].get(arm)
            if not curve:
                continue
            steps = np.asarray(curve["steps"], dtype=float)
            mean, sd = np.asarray(curve["mean"], dtype=float), np.asarray(curve["sd"], dtype=float)
            colour = COLOURS[i % len(COLOURS)]
            ax.plot(steps, mean, color=colour, label=f"{arm} (n={max(curve['seeds'])})", linewidth=1.4)
            ax.fill_between(steps, mean - sd, mean + sd, color=colour, alpha=0.2, linewidth=0)
        ax.set_xlabel("step")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _save(fig, stem)
