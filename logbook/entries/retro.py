"""Retrospective entries: results imported from another tracker after they existed.

Such an entry was not pre-registered: δ and the analysis were chosen after seeing the data. Every
view says so with ``RETRO_NOTE`` (the verdict's sentence, `show`, the terminal app, every export),
and ``rerun_gaps`` says what an audit would need that the source did not record.
"""

from __future__ import annotations

from typing import Any

from logbook.db.models import Hypothesis

RETRO_NOTE = "not pre-registered: δ and the analysis were chosen after seeing the data"
RETRO_BADGE = "RETROSPECTIVE"


def rerun_gaps(entry: Hypothesis) -> list[str]:
    """What is missing to rerun an imported entry on fresh seeds (empty: it can be rerun)."""
    if not entry.retrospective:
        return []
    gaps = []
    if not (entry.trainer or {}).get("command") and not (entry.trainer or {}).get("name"):
        gaps.append("no command to rerun it (the source recorded none; give --command when importing)")
    if not entry.git_commit:
        gaps.append("no git commit (the runs recorded none, or several; give --commit when importing)")
    elif not entry.repo_root:
        gaps.append(f"no repository holding commit {entry.git_commit[:12]} (give --repo when importing)")
    return gaps


def mark_verdict(result: dict[str, Any], entry: Hypothesis) -> dict[str, Any]:
    """Label a verdict of a retrospective entry in its sentences and at the top level."""
    result["retrospective"] = bool(entry.retrospective)
    if not entry.retrospective:
        return result
    result["retrospective_note"] = RETRO_NOTE
    prefix = f"Retrospective ({RETRO_NOTE}): "
    for comparison in result.get("comparisons", []):
        if not comparison["sentence"].startswith(prefix):
            comparison["sentence"] = prefix + comparison["sentence"]
    if "sentence" in result and not result["sentence"].startswith(prefix):
        result["sentence"] = prefix + result["sentence"]
    return result
