"""The entry screen's study panel: where the spread comes from (a bar per source of randomness)
and whether the verdict survives neighbouring settings. Hidden for entries with neither."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.widgets import Static

from logbook.tui.widgets import badge, figure

BAR_WIDTH = 28


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def variance_bars(report: dict[str, Any], width: int = BAR_WIDTH) -> Text:
    """Per arm and source, a bar as long as the sd due to that source alone (all bars on one
    scale), the interval's upper end marked ┤, then sd [low, high], the share of the total and,
    for classifiers that saved predictions, the top-1 churn between that group's models."""
    text = Text(f"where the spread comes from: sd of {report['metric']} per source alone "
                f"({report['seeds']} runs each, 95% bootstrap interval)\n", style="bold")
    top = max([r["sd_high"] for g in report["arms"].values() for r in g.values() if _finite(r["sd_high"])] or [0.0])
    for arm, groups in report["arms"].items():
        text.append(f"{arm}\n", style="bold")
        for source, r in groups.items():
            length = int(round(r["sd"] / top * width)) if top > 0 and _finite(r["sd"]) else 0
            marker = int(round(r["sd_high"] / top * width)) if top > 0 and _finite(r["sd_high"]) else 0
            cells = ["█"] * length + [" "] * (width - length)
            if length < marker <= width:
                cells[marker - 1] = "┤"
            style = "magenta" if source == "all" else ("cyan" if source in report["matter"] else "dim cyan")
            share = f" {r['share']:.0%}" if _finite(r["share"]) and source != "all" else ""
            text.append(f"  {source:<6} ")
            text.append("".join(cells), style=style)
            churn = (r.get("churn") or {}).get("churn")
            text.append(f" {figure(r['sd'], 3)} [{figure(r['sd_low'], 3)}, {figure(r['sd_high'], 3)}]{share}")
            text.append(f" churn {churn:.0%}\n" if _finite(churn) else "\n")
    if report["pending"]:
        text.append(f"{report['pending']} runs of the study have not finished\n", style="yellow")
    if report.get("warning"):
        text.append(f"warning: {report['warning']}\n", style="bold yellow")
    return text


def robustness_table(report: dict[str, Any]) -> Text:
    """The verdict, effect and interval at each neighbouring setting, and the summary line."""
    text = Text(f"robustness (follow-up {report['follow_up']}): ", style="bold")
    text.append(report["summary"] + "\n", style="bold green" if report["robust"] else "bold yellow")
    for row in report["settings"]:
        text.append(f"  {row['label'][:16]:<16} {row['candidate'][:10]:<10} ")
        text.append_text(badge(row["verdict"] or "no results"))  # a state word of entries/states.py
        text.append(f" {figure(row['effect'])} [{figure(row['ci_low'])}, {figure(row['ci_high'])}]\n")
    return text


class StudyPanel(Static):
    """Shown only when the entry has a variance study or a robustness follow-up."""

    def show(self, studies: dict[str, Any] | None) -> None:
        studies = studies or {}
        text = Text()
        if studies.get("variance"):
            text.append_text(variance_bars(studies["variance"]))
        if studies.get("robustness"):
            text.append_text(robustness_table(studies["robustness"]))
        text.rstrip()
        self.set_class(bool(text.plain), "visible")
        self.update(text)
