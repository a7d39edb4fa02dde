"""Verdicts for logbook entries: gather each arm's per-seed values from the runs, decide which
interval is honest, judge every candidate as one family, and cache the result on the entry.

Which runs count: planned and extra seeds (never audit runs or exact reruns, which are judged
on their own). A succeeded run gives its final value of the entry's metric; a diverged run
counts as a non-finite value; failed, crashed and cancelled runs are counted as excluded (a
cancelled seed is not a free pass: dropping seeds after looking would bias the result). Queued
and running seeds are not finished and do not count yet.

The fixed-plan Welch interval is used only when every registered seed of every arm has finished
and no seed beyond the registered plan was run; otherwise the entry has been looked at early or
topped up, and the anytime-valid interval is used, labelled.
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
from logbook.db.runstatus import FINISHED
from logbook.db.queries import amendments_of, arms_of, iso, resolve_entry, runs_of
from logbook.stats import family_verdicts
from logbook.stats.churn import between_arms, prediction_difference, top1_churn, within_arm

COUNTED_ORIGINS = ("planned", "extra")
VERDICT_FIELDS = ("min_effect", "alpha", "seeds")


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
    usable = {name: preds for name, preds in predictions.items() if preds}
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


def collect(rows: list[tuple[Arm, Run]], metric: str, keep: Callable[[Run], bool]) -> dict[str, ArmRuns]:
    """Per-arm values of ``metric`` from the runs that ``keep`` selects."""
    arms: dict[str, ArmRuns] = defaultdict(ArmRuns)
    for arm, run in rows:
        if not keep(run):
            continue
        data = arms[arm.name]
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


def judge(entry: Hypothesis, arms: list[Arm], data: dict[str, ArmRuns], *, interval: str, planned_n: int) -> list:
    """Every candidate against the baseline, as one family, by the entry's registered rule."""
    if entry.robustness:  # a robustness follow-up: each setting's candidates against its own baseline
        from logbook.entries.studies import judge_settings

        return [v for _, _, v in judge_settings(entry, data, interval=interval, planned_n=planned_n)]
    baseline = entry.baseline_arm
    candidates = [a for a in arms if a.name != baseline]
    return family_verdicts(
        np.array(data[baseline].values, dtype=float),
        {a.name: np.array(data[a.name].values, dtype=float) for a in candidates},
        family_size=len(candidates),
        failed={"__baseline__": data[baseline].excluded, **{a.name: data[a.name].excluded for a in candidates}},
        delta=entry.min_effect,
        alpha=entry.alpha,
        higher_is_better=entry.goal == "maximize",
        interval=interval,
        planned_n=planned_n,
        metric=entry.metric,
        baseline_name=baseline,
    )


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
    """Judge every candidate of an entry against its baseline. Returns a JSON-ready dict."""
    with store.session() as session:
        entry = resolve_entry(session, ref)
        arms = arms_of(session, entry.id)
        amendments = amendments_of(session, entry.id)
        data = collect(runs_of(session, entry.id), entry.metric, lambda run: run.seed_origin in COUNTED_ORIGINS)

        registered_n = _registered_seeds(entry)
        plan_finished = all(data[a.name].finished_planned >= registered_n for a in arms)
        topped_up = any(data[a.name].extra for a in arms) or entry.seeds_per_arm > registered_n
        if topped_up:
            interval, interval_reason = "anytime", "seeds were added beyond the registered plan"
        elif not plan_finished:
            interval, interval_reason = "anytime", "the registered plan has not finished"
        else:
            interval, interval_reason = "welch", "the registered plan finished as planned"

        comparisons = judge(entry, arms, data, interval=interval, planned_n=registered_n)
        headline = overall_verdict([c.verdict for c in comparisons])
        result: dict[str, Any] = {
            "entry": entry.slug,
            "id": entry.id,
            "title": entry.title,
            "metric": entry.metric,
            "goal": entry.goal,
            "baseline_arm": entry.baseline_arm,
            "verdict": headline,
            "interval": interval,
            "interval_reason": interval_reason,
            "family_size": len(comparisons),
            "registered_seeds": registered_n,
            "pending_runs": {a.name: data[a.name].pending for a in arms if data[a.name].pending},
            "arms": arms_report(arms, data),
            "amended": [
                {"field": m.field, "old": m.old_value, "new": m.new_value, "reason": m.reason}
                for m in amendments
                if m.field in VERDICT_FIELDS or m.field.startswith("arms.")
            ],
            "churn": _churn({a.name: _load_predictions(data[a.name].predictions) for a in arms}, entry.baseline_arm),
            "comparisons": [c.to_dict() for c in comparisons],
        }
        if len(comparisons) == 1:
            # One candidate: its fields also sit at the top level, for simple scripts.
            result = {**comparisons[0].to_dict(), **result}
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
