"""Verdicts for logbook entries: gather each arm's per-seed values from the runs, decide which
interval is honest, judge every candidate as one family, and cache the result on the entry.

Which runs count: planned and extra seeds (never audit runs or exact reruns, which are judged
on their own). A succeeded run gives its final value of the entry's metric; a diverged run
counts as a non-finite value; failed, crashed and cancelled runs are counted as excluded (a
cancelled seed is not a free pass: dropping seeds after looking would bias the result). Queued
and running seeds are not finished and do not count yet.

The fixed-plan Welch interval is used only when every registered seed of every arm has a result
and no seed beyond the registered plan was run; otherwise the entry has been looked at early,
cut short or topped up, and the anytime-valid interval is used, labelled (logbook.entries.plan
says what counts as a result and which amendments are part of the plan).

The verdict is judged by the registered plan; amendments of δ or α and arms added after the first
result give a second reading under the key ``post_hoc``, labelled, never the entry's verdict. An
entry registered with δ = "auto" (older logbooks) is judged with the old data-derived δ and marked
exploratory, with the reason.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from logbook.db.engine import Store
from logbook.db.models import Arm, Hypothesis, Run, utcnow
from logbook.db.runstatus import COUNTED_ORIGINS, FINISHED
from logbook.entries.chain import integrity_fields
from logbook.entries.retro import mark_verdict
from logbook.db.queries import amendments_of, arms_of, iso, resolve_entry, runs_of, withdrawal
from logbook.entries.plan import Plan, amendment_record, first_result_at, is_post_hoc, plan_state, registered_plan
from logbook.stats import default_delta, family_verdicts
from logbook.stats.churn import are_probabilities, between_arms, prediction_difference, top1_churn, within_arm

VERDICT_FIELDS = ("min_effect", "alpha", "seeds")
AUTO_DELTA_REASON = (
    "registered with δ = auto: δ was set from the spread of the very values being judged (0.95 pooled sd), "
    "which moves with the data and makes more seeds favour a negative; this verdict is exploratory, "
    "not a test of a registered δ"
)


def overall_verdict(verdicts: list[str]) -> str:
    """An entry's headline: positive if any candidate is, negative if all are, else inconclusive."""
    if not verdicts:
        return "inconclusive"
    if "positive" in verdicts:
        return "positive"
    if all(v == "negative" for v in verdicts):
        return "negative"
    return "inconclusive"


def _registered_seeds(entry: Hypothesis) -> int:
    content = entry.registered_content or {}
    return int(content.get("seeds", entry.seeds_per_arm))


def _load_predictions(paths: list[str]) -> list[np.ndarray]:
    loaded = []
    for path in paths:
        try:
            loaded.append(np.load(Path(path), allow_pickle=False))
        except (OSError, ValueError):
            continue  # a missing or unreadable file is left out of the churn figures
    return loaded


def _churn(predictions: dict[str, list[np.ndarray]], baseline: str) -> dict[str, Any] | None:
    # only class probabilities: for a regression metric's outputs churn has no meaning
    usable = {name: preds for name, preds in predictions.items() if preds and all(are_probabilities(p) for p in preds)}
    if not usable:
        return None
    out: dict[str, Any] = {"within": {}, "between": {}}
    for name, preds in usable.items():
        pd_ = within_arm(preds, prediction_difference)
        churn = within_arm(preds, top1_churn)
        out["within"][name] = {
            "models": len(preds), "prediction_difference": pd_.mean, "pd_low": pd_.low, "pd_high": pd_.high,
            "churn": churn.mean, "churn_low": churn.low, "churn_high": churn.high,
        }
    if baseline in usable:
        for name, preds in usable.items():
            if name == baseline:
                continue
            pd_ = between_arms(usable[baseline], preds, prediction_difference)
            churn = between_arms(usable[baseline], preds, top1_churn)
            out["between"][name] = {
                "prediction_difference": pd_.mean, "pd_low": pd_.low, "pd_high": pd_.high,
                "churn": churn.mean, "churn_low": churn.low, "churn_high": churn.high,
            }
    return out


@dataclass
class ArmRuns:
    """One arm's finished runs, as the verdict sees them."""

    values: list[float] = field(default_factory=list)  # NaN for a diverged seed
    excluded: int = 0  # failed, crashed, cancelled, or succeeded without the metric
    pending: int = 0  # queued or running
    finished_planned: int = 0
    extra: int = 0
    wall: list[float] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)


def seed_attempts(rows: list[tuple[Arm, Run]], keep: Callable[[Run], bool]) -> dict[tuple[str, int], list[Run]]:
    """The attempts of each (arm, seed) that ``keep`` selects, oldest first (requeue adds attempts as rows)."""
    seeds: dict[tuple[str, int], list[Run]] = defaultdict(list)
    for arm, run in rows:
        if keep(run):
            seeds[(arm.name, run.seed)].append(run)
    for attempts in seeds.values():
        attempts.sort(key=lambda run: (run.attempt, run.id))
    return seeds


def collect(rows: list[tuple[Arm, Run]], metric: str, keep: Callable[[Run], bool]) -> dict[str, ArmRuns]:
    """Per-arm values of ``metric``, one per seed, from the runs that ``keep`` selects.

    A seed that diverged in any attempt counts as diverged, whatever later attempts did (retrying
    until a seed converges would hide instability); otherwise its latest attempt decides, and a
    seed whose latest attempt is queued or running is pending."""
    arms: dict[str, ArmRuns] = defaultdict(ArmRuns)
    for (name, _seed), attempts in seed_attempts(rows, keep).items():
        data = arms[name]
        diverged = [a for a in attempts if a.status == "diverged"]
        run = diverged[0] if diverged else attempts[-1]
        if run.seed_origin == "extra":
            data.extra += 1
        if run.status not in FINISHED:
            data.pending += 1
            continue
        if run.seed_origin == "planned":
            data.finished_planned += 1
        if run.wall_time_s is not None:
            data.wall.append(run.wall_time_s)
        value = (run.final_metrics or {}).get(metric)
        if run.status == "succeeded" and isinstance(value, (int, float)) and not isinstance(value, bool):
            data.values.append(float(value))
            if run.predictions_path:
                data.predictions.append(run.predictions_path)
        elif run.status == "diverged":
            data.values.append(math.nan)
        else:
            data.excluded += 1
    return arms


def data_delta(arms: list[str], data: dict[str, ArmRuns]) -> float:
    """The old "auto" δ, for entries registered with it: 0.95 × the pooled sd of the arms' finite
    values (``logbook.stats.default_delta``), NaN when there is no spread to pool."""
    values = [np.asarray(data[a].values, dtype=float) for a in arms]
    values = [v[np.isfinite(v)] for v in values]
    values = [v for v in values if v.size >= 2]
    if not values:
        return math.nan
    dof = sum(v.size - 1 for v in values)
    pooled = math.sqrt(sum((v.size - 1) * v.var(ddof=1) for v in values) / dof)
    return default_delta(pooled, 2, pooled, 2)


def judge_settings(follow: Hypothesis, data: dict[str, Any], *, interval: str, planned_n: int) -> list[tuple[dict, str, Any]]:
    """Each setting's candidate(s) against that setting's baseline, as one family over every
    setting and candidate: (setting, original candidate name, Verdict)."""
    settings = follow.robustness["settings"]
    family = sum(len(s["candidates"]) for s in settings)
    judged = []
    for s in settings:
        b = data[s["baseline"]]
        for original_name, arm in s["candidates"].items():
            c = data[arm]
            v = family_verdicts(
                np.array(b.values, dtype=float), {arm: np.array(c.values, dtype=float)}, family_size=family,
                failed={"__baseline__": b.excluded, arm: c.excluded}, delta=follow.min_effect, alpha=follow.alpha,
                higher_is_better=follow.goal == "maximize", interval=interval, planned_n=planned_n,
                metric=follow.metric, baseline_name=s["baseline"],
            )[0]
            judged.append((s, original_name, v))
    return judged


def judge(
    entry: Hypothesis, arms: list[Arm], data: dict[str, ArmRuns], *, interval: str, planned_n: int,
    delta: float | None = None, alpha: float | None = None,
) -> list:
    """Every candidate against the baseline, as one family. δ and α default to the entry's live
    values; a δ of None (registered as "auto") is replaced by ``data_delta`` (exploratory)."""
    if entry.robustness:  # a robustness follow-up: each setting's candidates against its own baseline
        return [v for _, _, v in judge_settings(entry, data, interval=interval, planned_n=planned_n)]
    baseline = entry.baseline_arm
    candidates = [a for a in arms if a.name != baseline]
    delta = entry.min_effect if delta is None else delta
    if delta is None:
        delta = data_delta([a.name for a in arms], data)
        if not math.isfinite(delta):
            delta = 0.0
    return family_verdicts(
        np.array(data[baseline].values, dtype=float),
        {a.name: np.array(data[a.name].values, dtype=float) for a in candidates},
        family_size=len(candidates),
        failed={"__baseline__": data[baseline].excluded, **{a.name: data[a.name].excluded for a in candidates}},
        delta=delta,
        alpha=entry.alpha if alpha is None else alpha,
        higher_is_better=entry.goal == "maximize",
        interval=interval,
        planned_n=planned_n,
        metric=entry.metric,
        baseline_name=baseline,
    )


def choose_interval(rows: list, arms: list[str], data: dict[str, ArmRuns], plan: Plan, seeds_per_arm: int) -> tuple[str, str]:
    """The interval an honest reading of these arms needs, and why."""
    state = plan_state(rows, arms, plan.seeds)
    if state.cancelled:
        return "anytime", "planned seeds were cancelled before they had a result, so the plan never finishes as planned"
    if any(data[a].extra for a in arms) or seeds_per_arm > plan.seeds:
        return "anytime", "seeds were added beyond the registered plan"
    if not state.finished:
        return "anytime", "the registered plan has not finished"
    return "welch", "the registered plan finished as planned"


def reading(
    entry: Hypothesis, arms: list[Arm], rows: list, data: dict[str, ArmRuns], plan: Plan, *, delta: float | None,
    alpha: float,
) -> dict[str, Any]:
    """One reading of the entry: the interval choice and every candidate judged as one family."""
    names = [a.name for a in arms]
    interval, why = choose_interval(rows, names, data, plan, entry.seeds_per_arm)
    if delta is None:
        delta = data_delta(names, data)
        delta = delta if math.isfinite(delta) else 0.0
    comparisons = judge(entry, arms, data, interval=interval, planned_n=plan.seeds, delta=delta, alpha=alpha)
    return {
        "verdict": overall_verdict([c.verdict for c in comparisons]), "interval": interval, "interval_reason": why,
        "delta": delta, "alpha": alpha, "family_size": len(comparisons), "comparisons": comparisons,
    }


def arms_report(arms: list[Arm], data: dict[str, ArmRuns]) -> dict[str, Any]:
    return {
        a.name: {
            "values": data[a.name].values,
            "excluded": data[a.name].excluded,
            "pending": data[a.name].pending,
            "mean_wall_time_s": float(np.mean(data[a.name].wall)) if data[a.name].wall else None,
        }
        for a in arms
    }


def entry_verdict(store: Store, ref: str, *, cache: bool = True) -> dict[str, Any]:
    """Judge every candidate of an entry against its baseline by its registered plan. Returns a
    JSON-ready dict; ``post_hoc`` holds the labelled exploratory reading when δ, α or arms were
    changed after the first result, and ``exploratory`` is true when the registered δ was "auto"."""
    with store.session() as session:
        entry = resolve_entry(session, ref)
        arms = arms_of(session, entry.id)
        amendments = amendments_of(session, entry.id)
        rows = [(a, r) for a, r in runs_of(session, entry.id) if r.seed_origin in COUNTED_ORIGINS]
        data = collect(rows, entry.metric, lambda run: True)

        plan = registered_plan(entry, arms, amendments, (r for _, r in rows))
        planned_arms = [a for a in arms if a.name in plan.arms or a.name == entry.baseline_arm]
        registered = reading(entry, planned_arms, rows, data, plan, delta=plan.delta, alpha=plan.alpha)
        comparisons = registered["comparisons"]
        headline = registered["verdict"]
        exploratory = plan.delta is None
        reason = AUTO_DELTA_REASON if exploratory else None

        post_hoc = None
        if plan.post_hoc:
            late = reading(entry, arms, rows, data, plan, delta=entry.min_effect, alpha=entry.alpha)
            post_hoc = {
                "label": plan.label,
                "amendments": plan.post_hoc,
                "reading": {**{k: v for k, v in late.items() if k != "comparisons"},
                            "comparisons": [c.to_dict() for c in late["comparisons"]]},
            }
        first = first_result_at(r for _, r in rows)
        result: dict[str, Any] = {
            "entry": entry.slug,
            "id": entry.id,
            **integrity_fields(store, entry.id),
            "title": entry.title,
            "metric": entry.metric,
            "goal": entry.goal,
            "baseline_arm": entry.baseline_arm,
            "withdrawn": withdrawal(amendments),  # {"at", "reason"} once withdrawn, else None
            "verdict": headline,
            "interval": registered["interval"],
            "interval_reason": registered["interval_reason"],
            "family_size": len(comparisons),
            "registered_seeds": plan.seeds,
            "registered_delta": plan.delta,
            "registered_alpha": plan.alpha,
            "exploratory": exploratory,
            "exploratory_reason": reason,
            "pending_runs": {a.name: data[a.name].pending for a in arms if data[a.name].pending},
            "arms": arms_report(arms, data),
            "amended": [
                amendment_record(m, is_post_hoc(m, first))
                for m in amendments
                if m.field in VERDICT_FIELDS or m.field.startswith("arms.")
            ],
            "post_hoc": post_hoc,
            "churn": _churn({a.name: _load_predictions(data[a.name].predictions) for a in arms}, entry.baseline_arm),
            "comparisons": [
                {**c.to_dict(), "exploratory": exploratory, "exploratory_reason": reason} for c in comparisons
            ],
        }
        if len(comparisons) == 1:
            # One candidate: its fields also sit at the top level, for simple scripts.
            result = {**result["comparisons"][0], **result}
        result = mark_verdict(result, entry)
        interval = registered["interval"]
        detail = {
            "verdict": headline, "interval": interval,
            "comparisons": [
                {k: c.to_dict()[k] for k in ("candidate_name", "verdict", "detail", "effect", "ci_low", "ci_high")}
                for c in comparisons
            ],
        }
        old = {k: v for k, v in (entry.verdict_detail or {}).items() if k != "computed_at"}
        # The app asks every few seconds: take the write lock only when the verdict changed.
        changed = entry.verdict != headline or json.dumps(old, sort_keys=True) != json.dumps(detail, sort_keys=True)
    if cache and changed:
        with store.session(write=True) as session:
            stored = session.get(Hypothesis, result["id"])
            stored.verdict = headline
            stored.verdict_detail = {**detail, "computed_at": iso(utcnow())}
            session.add(stored)
            session.commit()
    return result
