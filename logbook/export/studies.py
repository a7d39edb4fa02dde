"""The studies of an entry in writeups: the variance study (a figure and a table) and the
robustness follow-up (a table of the verdict at each neighbouring setting, and its summary line).

``logbook.entries.studies.studies_of`` reads both once (into the gathered report); the Markdown
and LaTeX writers call ``markdown_lines`` and ``latex_lines``; ``variance_figure`` draws the bar
chart (matplotlib, imported only when called).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from logbook.export.escape import md, tex
from logbook.export.content import num


def _variance_rows(report: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(arm, source, r) for arm, groups in report["arms"].items() for source, r in groups.items()]


def _churn(r: dict[str, Any]) -> Any:
    return (r.get("churn") or {}).get("churn")


def markdown_lines(studies: dict[str, Any] | None, h: str) -> list[str]:
    """Markdown sections for the variance study and the robustness follow-up (none if absent)."""
    lines: list[str] = []
    variance = (studies or {}).get("variance")
    if variance:
        lines += ["", f"{h}# Where the spread comes from", "",
                  f"Variance study: {variance['seeds']} runs per source, each varying one source of randomness with the "
                  "others held at one fixed seed, and the same number varying all of them; never part of the verdict.", "",
                  "| arm | source | n | sd | 95% bootstrap interval | share of all-sources variance | top-1 churn |",
                  "|---|---|---:|---:|---|---:|---:|"]
        for arm, source, r in _variance_rows(variance):
            share = f"{r['share']:.0%}" if _finite(r["share"]) else "–"
            lines.append(f"| {md(arm)} | {source} | {r['n']} | {num(r['sd'])} | [{num(r['sd_low'])}, {num(r['sd_high'])}] | "
                         f"{share} | {num(_churn(r), 3)} |")
        if variance["pending"]:
            lines += ["", f"{variance['pending']} runs of the study have not finished."]
        if variance.get("warning"):
            lines += ["", f"**Warning:** {md(variance['warning'])}."]
    robustness = (studies or {}).get("robustness")
    if robustness:
        lines += ["", f"{h}# Robustness at neighbouring settings", "",
                  f"Follow-up entry {robustness['follow_up']} (`{robustness['follow_up_slug']}`), fresh seeds, δ and α inherited, "
                  f"one family over every setting: **{md(robustness['summary'])}**.", "",
                  "| setting | candidate | verdict | effect (better direction) | interval |", "|---|---|---|---:|---|"]
        for row in robustness["settings"]:
            lines.append(f"| {md(row['label'])} | {md(row['candidate'])} | {row['verdict'] or 'running'} | {num(row['effect'])} | "
                         f"[{num(row['ci_low'])}, {num(row['ci_high'])}] |")
    return lines


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _tex_share(x: Any) -> str:
    return f"{x * 100:.0f}\\%" if _finite(x) else "--"


def latex_lines(studies: dict[str, Any] | None, sub: str) -> list[str]:
    """LaTeX tables for the variance study and the robustness follow-up (none if absent)."""
    out: list[str] = []
    variance = (studies or {}).get("variance")
    if variance:
        out += [f"\\{sub}*{{Where the spread comes from}}", "\\begin{table}[ht]", "\\centering",
                "\\begin{tabular}{llrrlrr}", "\\toprule",
                "Arm & Source & $n$ & sd & 95\\% interval & Share & Churn \\\\", "\\midrule"]
        for arm, source, r in _variance_rows(variance):
            out.append(f"{tex(arm)} & {source} & {r['n']} & {tex(num(r['sd']))} & [{tex(num(r['sd_low']))}, "
                       f"{tex(num(r['sd_high']))}] & {_tex_share(r['share'])} & {tex(num(_churn(r), 3))} \\\\")
        out += ["\\bottomrule", "\\end{tabular}",
                f"\\caption{{Standard deviation of {tex(variance['metric'])} due to each source of randomness alone "
                f"({variance['seeds']} runs each) and its share of the all-sources variance.}}", "\\end{table}", ""]
        if variance.get("warning"):
            out += [f"\\textbf{{Warning:}} {tex(variance['warning'])}.", ""]
    robustness = (studies or {}).get("robustness")
    if robustness:
        out += [f"\\{sub}*{{Robustness at neighbouring settings}}", f"{tex(robustness['summary'])}.", "",
                "\\begin{tabular}{lllrl}", "\\toprule", "Setting & Candidate & Verdict & Effect & Interval \\\\", "\\midrule"]
        for row in robustness["settings"]:
            out.append(f"{tex(row['label'])} & {tex(row['candidate'])} & {row['verdict'] or 'running'} & "
                       f"{tex(num(row['effect']))} & [{tex(num(row['ci_low']))}, {tex(num(row['ci_high']))}] \\\\")
        out += ["\\bottomrule", "\\end{tabular}", ""]
    return out


def variance_figure(studies: dict[str, Any] | None, stem: Path) -> list[Path]:
    """Bars: the sd due to each source alone (and all together) per arm, with bootstrap intervals."""
    variance = (studies or {}).get("variance")
    if not variance:
        return []
    import numpy as np

    from logbook.export.figures import COLOURS, _save, plt

    arms = list(variance["arms"])
    sources = [*variance["sources"], "all"]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(sources) * len(arms) * 0.6 + 2), 3.4))
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        rows = [variance["arms"][arm][s] for s in sources]
        sd = np.array([r["sd"] if r["sd"] is not None else np.nan for r in rows], dtype=float)
        low = np.array([r["sd_low"] if r["sd_low"] is not None else np.nan for r in rows], dtype=float)
        high = np.array([r["sd_high"] if r["sd_high"] is not None else np.nan for r in rows], dtype=float)
        x = np.arange(len(sources)) + (i - (len(arms) - 1) / 2) * width
        errors = np.nan_to_num(np.vstack([sd - low, high - sd]), nan=0.0).clip(min=0)
        ax.bar(x, np.nan_to_num(sd), width, color=COLOURS[i % len(COLOURS)], label=arm, yerr=errors, capsize=3)
    ax.set_xticks(range(len(sources)), sources)
    ax.set_ylabel(f"sd of {variance['metric']}")
    ax.set_title("spread due to each source alone (95% bootstrap interval)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, stem)
