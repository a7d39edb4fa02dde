"""The words for where an entry stands, defined once for the list, the entry screen and the CLI
(`list`, `show`, `status`).

An entry's state is its verdict by the registered plan once it has results, and otherwise says why
there is no verdict yet. The same inputs give the same word everywhere: the list reads a cached
verdict, the entry screen a fresh one, and both call :func:`entry_state`.
"""

from __future__ import annotations

VERDICTS = ("positive", "negative", "inconclusive")

STATES: dict[str, str] = {
    "draft": "written but not registered: no seed may run yet",
    "no results": "registered; no counted seed has finished yet",
    "unjudged": "has results the verdict has not been computed from yet (opening the entry computes it)",
    "positive": "a candidate beat the baseline by at least δ",
    "negative": "every candidate's effect is ruled smaller than δ",
    "inconclusive": "the interval is too wide for either (the plan may still be unfinished)",
    "withdrawn": "registered by mistake and withdrawn with a reason; kept on the record, hidden by default",
}


def entry_state(*, status: str, verdict: str | None, finished: int, withdrawn: bool = False) -> str:
    """The one word for an entry: ``withdrawn``, ``draft``, ``no results`` (nothing counted has
    finished), ``unjudged`` (results but no verdict computed) or the verdict itself."""
    if withdrawn:
        return "withdrawn"
    if status == "draft":
        return "draft"
    if finished <= 0:
        return "no results"
    if verdict not in VERDICTS:
        return "unjudged"
    return verdict


def explain(state: str) -> str:
    """What a state word means, for legends and help."""
    return STATES.get(state, state)


def verdict_state(verdict: dict, status: str) -> str:
    """The state word for a freshly computed verdict (``entries.verdicts.entry_verdict``'s result)
    of an entry with ``status``: what the entry screen's badge shows."""
    finished = sum(len(arm["values"]) + arm["excluded"] for arm in verdict.get("arms", {}).values())
    return entry_state(status=status, verdict=verdict["verdict"], finished=finished,
                       withdrawn=bool(verdict.get("withdrawn")))
