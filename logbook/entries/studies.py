"""The two questions asked of every verdict, together: what its variance study found
(``variance_study``) and whether it held at neighbouring settings (``robustness``), as the verdict,
the entry screen and the writeups show them.
"""

from __future__ import annotations

from typing import Any

from logbook.db.engine import Store
from logbook.db.queries import resolve_entry
from logbook.entries.robustness import follow_up_of, robustness_report
from logbook.entries.variance_study import registered_study, variance_report


def verdict_notes(store: Store, ref: str) -> dict[str, Any]:
    """What the verdict of ENTRY should say about its studies: the variance warning (sources that
    matter but that the verdict's seeds did not vary) and the robustness summary line."""
    with store.session() as session:
        entry = resolve_entry(session, ref)
        has_study = bool(registered_study(entry))
    _, follow = follow_up_of(store, ref)
    notes: dict[str, Any] = {"variance_warning": None, "robustness": None, "robust": None}
    if has_study:
        notes["variance_warning"] = variance_report(store, ref)["warning"]
    if follow is not None:
        report = robustness_report(store, ref)
        notes["robustness"], notes["robust"] = report["summary"], report["robust"]
    return notes


def studies_of(store: Store, ref: str) -> dict[str, Any]:
    """``{"variance": report or None, "robustness": report or None}``: what the entry screen and
    the writeups show about ENTRY's studies."""
    with store.session() as session:
        has_study = bool(registered_study(resolve_entry(session, ref)))
    _, follow = follow_up_of(store, ref)
    return {"variance": variance_report(store, ref) if has_study else None,
            "robustness": robustness_report(store, ref) if follow is not None else None}
