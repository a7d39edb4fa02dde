"""What an entry's verdict is judged by: the registered plan, and what was changed after results.

The verdict is judged by the registered δ, α, seeds and arms, plus the amendments made before
the first result existed (those are part of the plan: nobody had seen an outcome). An amendment
of δ or α made after the first result is **post hoc**: it gives a second, labelled exploratory
reading and never the entry's verdict. An arm added after the first result is post hoc too (a
variant chosen after looking): it is left out of the registered reading and judged only in the
exploratory one. Seeds raised after the first result are a top-up, not post hoc: the extra seeds
count, and the entry is judged with the anytime-valid interval, which stays valid however the
decision to add seeds was made.

A planned seed has a result when its run succeeded, diverged, failed or crashed: the run ended on
its own and its outcome is counted (failed and crashed runs as exclusions, which withhold a verdict
in that arm's favour). A cancelled run never has a result: cutting seeds short after looking is
exactly the early stop that the fixed-n interval cannot survive, so a plan with a cancelled
planned seed is judged with the anytime-valid interval for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from logbook.db.models import Amendment, Arm, Hypothesis, Run
from logbook.db.runstatus import RESULT

PLAN_FIELDS = ("min_effect", "alpha", "seeds")
POST_HOC_FIELDS = ("min_effect", "alpha")
LABELS = {"min_effect": "δ", "alpha": "α"}


def _naive(moment: datetime | None) -> datetime | None:
    """Times in UTC without tzinfo, so stored (naive) and fresh (aware) values compare."""
    return None if moment is None else moment.replace(tzinfo=None)


def first_result_at(runs: Iterable[Run]) -> datetime | None:
    """When the first run of the entry ended with a result (its outcome could be seen)."""
    ends = [_naive(r.ended_at) for r in runs if r.status in RESULT and r.ended_at is not None]
    return min(ends) if ends else None


def is_post_hoc(amendment: Amendment, first_result: datetime | None) -> bool:
    """An amendment is post hoc when a result existed before it was made."""
    return first_result is not None and _naive(amendment.created_at) >= first_result


@dataclass
class Plan:
    """The registered rule the verdict is judged by, and what changed after results."""

    delta: float | None  # None: registered as "auto" (no δ in metric units)
    alpha: float
    seeds: int
    arms: list[str]  # arms of the registered reading, in order
    post_hoc: list[dict[str, Any]] = field(default_factory=list)  # amendments after the first result
    post_hoc_arms: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """"with δ amended after results", "with δ and α amended ...", "with arm wide added ..."."""
        changed = [LABELS[f] for f in POST_HOC_FIELDS if any(a["field"] == f for a in self.post_hoc)]
        parts = []
        if changed:
            parts.append(f"with {' and '.join(changed)} amended after results")
        if self.post_hoc_arms:
            names = ", ".join(self.post_hoc_arms)
            parts.append(f"with arm{'s' if len(self.post_hoc_arms) > 1 else ''} {names} added after results")
        return "; ".join(parts)


def amendment_record(amendment: Amendment, post_hoc: bool) -> dict[str, Any]:
    return {
        "field": amendment.field, "old": amendment.old_value, "new": amendment.new_value, "reason": amendment.reason,
        "at": _naive(amendment.created_at).isoformat(timespec="seconds") + "Z", "post_hoc": post_hoc,
    }


def registered_plan(entry: Hypothesis, arms: list[Arm], amendments: list[Amendment], runs: Iterable[Run]) -> Plan:
    """The plan as registered, with the amendments made before the first result applied."""
    content = entry.registered_content or {}
    delta = content.get("min_effect", entry.min_effect)
    plan = Plan(
        delta=None if delta in (None, "auto") else float(delta),
        alpha=float(content.get("alpha", entry.alpha)),
        seeds=int(content.get("seeds", entry.seeds_per_arm)),
        arms=[a.name for a in arms if not a.added_by_amendment],
    )
    first = first_result_at(runs)
    for amendment in amendments:
        late = is_post_hoc(amendment, first)
        if amendment.field.startswith("arms."):
            name = amendment.field[len("arms."):]
            (plan.post_hoc_arms if late else plan.arms).append(name)
            if late:
                plan.post_hoc.append(amendment_record(amendment, True))
        elif amendment.field in POST_HOC_FIELDS and late:
            plan.post_hoc.append(amendment_record(amendment, True))
        elif amendment.field == "min_effect":
            plan.delta = None if amendment.new_value in (None, "auto") else float(amendment.new_value)
        elif amendment.field == "alpha":
            plan.alpha = float(amendment.new_value)
        elif amendment.field == "seeds" and not late:
            plan.seeds = int(amendment.new_value)
    known = {a.name for a in arms}
    plan.arms = [name for name in plan.arms if name in known]
    return plan


@dataclass(frozen=True)
class PlanState:
    finished: bool  # every planned seed of every arm has a result
    cancelled: bool  # a planned seed was cancelled: the plan can never finish as planned


def plan_state(rows: list[tuple[Arm, Run]], arm_names: list[str], seeds: int) -> PlanState:
    """Whether every one of the first ``seeds`` planned seeds of each arm has a result."""
    with_result: dict[str, set[int]] = {name: set() for name in arm_names}
    cancelled = False
    for arm, run in rows:
        if arm.name not in with_result or run.seed_origin != "planned":
            continue
        if run.status == "cancelled":
            cancelled = True
        elif run.status in RESULT:
            with_result[arm.name].add(run.seed)
    finished = not cancelled and all(len(seen) >= seeds for seen in with_result.values())
    return PlanState(finished=finished, cancelled=cancelled)
