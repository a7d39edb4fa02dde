"""What a writeup says, decided once for Markdown and LaTeX alike: which entries have results,
how the appendix groups them, and how a reader reproduces an entry."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

UNTAGGED = "untagged"
CURVES_BAND = "the band spans the lowest to the highest seed at each step"
FIGURE_ALT = {"distribution": "per-seed distribution", "effects": "effects against 0 and δ", "curves": "learning curves",
              "variance": "spread due to each source"}
FIGURE_CAPTIONS = {
    "distribution": "Every seed of every arm, with the interquartile box; the dashed line is the baseline mean "
                    "(no effect) and the dotted line where a candidate's mean would sit for an effect of exactly δ",
    "effects": "Each candidate's effect (positive means better) with the interval the verdict used, against 0 and δ",
    "curves": f"Learning curves: the mean over seeds; {CURVES_BAND}",
    "variance": "Variance study: the standard deviation due to each source of randomness alone, and to all "
                "together, with 95% bootstrap intervals",
}


def num(x: Any, digits: int = 4) -> str:
    """A number in a writeup: ``digits`` significant digits, a true minus sign, – when missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    return f"{x:.{digits}g}".replace("-", "−")


def has_results(report: dict[str, Any]) -> bool:
    """Whether any counted seed of the entry has finished (a value, a divergence or a failure).
    An entry without one has no verdict to report: it is evidence of what was planned."""
    arms = report["verdict"]["arms"].values()
    return any(arm["values"] or arm["excluded"] for arm in arms)


def split_by_results(reports: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(entries with results, entries registered or drafted but not yet run), order kept."""
    done = [r for r in reports if has_results(r)]
    return done, [r for r in reports if not has_results(r)]


def split_withdrawn(reports: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(entries that count, withdrawn entries), order kept. Withdrawn entries leave a logbook's
    results and are listed in its "Withdrawn" section instead, so the record stays complete."""
    return ([r for r in reports if not r["entry"].get("withdrawn")],
            [r for r in reports if r["entry"].get("withdrawn")])


def withdrawn_note(report: dict[str, Any]) -> tuple[str, str]:
    """(when, why) an entry was withdrawn."""
    found = report["entry"]["withdrawn"]
    return found["at"], found["reason"]


def group_by_first_tag(reports: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each entry once, under its first tag (the other tags are shown beside it), groups sorted."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for report in reports:
        tags = report["entry"]["tags"] or [UNTAGGED]
        groups[tags[0]].append(report)
    return dict(sorted(groups.items()))


def other_tags(report: dict[str, Any]) -> list[str]:
    return list((report["entry"]["tags"] or [])[1:])


def reproduce_commands(report: dict[str, Any]) -> list[str]:
    """The commands that reproduce an entry: check out its commit (and its recorded diff), rerun it
    on fresh committed seeds, or repeat one run exactly."""
    entry = report["entry"]
    slug, git = entry["slug"], entry["git"]
    out = []
    if git.get("in_repo") and git.get("commit"):
        out.append(f"git checkout {git['commit']}")
        if git.get("dirty") and git.get("diff_lines"):
            out.append(f"logbook show {slug} --diff | git apply")
    out.append(f"logbook audit {slug}")
    first_run = next((row.get("run_id") for row in report["rows"] if row.get("run_id") is not None), None)
    if first_run is not None:
        out.append(f"logbook rerun {first_run}")
    return out


def not_run_note(report: dict[str, Any]) -> str:
    """One line for an entry without results: registered when, with how many seeds per arm."""
    entry = report["entry"]
    when = f"registered {entry['registered_at']}" if entry["registered_at"] else "draft, not registered"
    pending = sum(arm.get("pending", 0) for arm in report["verdict"]["arms"].values())
    queued = f"; {pending} runs queued or running" if pending else ""
    return f"{when}; {entry['seeds']} seeds per arm planned on {len(entry['arms'])} arms{queued}"
