"""Everything a writeup needs about one entry, read once from the logbook into plain dicts."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from sqlmodel import col, select

from logbook.db.engine import Store
from logbook.db.models import Audit, Hypothesis, MetricPoint
from logbook.db.queries import iso, resolve_entry, runs_of
from logbook.entries.registry import entry_detail
from logbook.entries.verdicts import COUNTED_ORIGINS, entry_verdict, seed_attempts

CURVE_POINTS = 200  # learning curves are thinned to at most this many steps per metric


def entry_ids(store: Store, refs: list[str], all_entries: bool, verdicts: list[str] | None) -> list[int]:
    with store.session() as session:
        if all_entries:
            ids = list(session.exec(select(Hypothesis.id).order_by(Hypothesis.id)).all())
        else:
            ids = [resolve_entry(session, ref).id for ref in refs]
    if verdicts:
        keep = []
        for entry_id in ids:
            if entry_verdict(store, str(entry_id), cache=False)["verdict"] in verdicts:
                keep.append(entry_id)
        ids = keep
    return ids


def _curves(store: Store, run_arms: dict[int, str], metric: str) -> dict[str, dict[str, Any]]:
    """Per curve metric and arm: steps, and the mean, sd, lowest and highest value over seeds (entry
    metric first, at most 3 metrics)."""
    if not run_arms:
        return {}
    with store.session() as session:
        rows = session.exec(
            select(MetricPoint.run_id, MetricPoint.name, MetricPoint.step, MetricPoint.value)
            .where(col(MetricPoint.run_id).in_(list(run_arms)))
        ).all()
    by_name: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run_id, name, step, value in rows:
        by_name[name][run_arms[run_id]][step].append(math.nan if value is None else value)
    names = sorted(by_name, key=lambda n: (n != metric, n))[:3]
    curves: dict[str, dict[str, Any]] = {}
    for name in names:
        curves[name] = {}
        for arm, steps in by_name[name].items():
            ordered = sorted(steps)
            if len(ordered) > CURVE_POINTS:
                ordered = [ordered[int(i)] for i in np.linspace(0, len(ordered) - 1, CURVE_POINTS)]
            values = [np.asarray(steps[s], dtype=float) for s in ordered]
            curves[name][arm] = {
                "steps": ordered,
                "mean": [float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for v in values],
                "sd": [float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else 0.0 for v in values],
                "low": [float(np.nanmin(v)) if np.isfinite(v).any() else math.nan for v in values],
                "high": [float(np.nanmax(v)) if np.isfinite(v).any() else math.nan for v in values],
                "seeds": [int(np.isfinite(v).sum()) for v in values],
            }
    return curves


def environment_summary(environment: dict[str, Any] | None) -> dict[str, Any]:
    """The few environment facts a paper states."""
    environment = environment or {}
    packages = environment.get("packages") or {}
    torch = environment.get("torch") or {}
    return {
        "python": environment.get("python"),
        "platform": environment.get("platform"),
        "host": environment.get("host"),
        "torch": torch.get("version") or packages.get("torch"),
        "cuda": torch.get("cuda_build"),
        "cudnn": torch.get("cudnn"),
        "gpus": environment.get("gpus") or torch.get("devices") or [],
        "numpy": packages.get("numpy"),
        "logbook": environment.get("logbook"),
    }


def gather(store: Store, entry_id: int) -> dict[str, Any]:
    """The entry, its verdict, per-seed rows, curves, environment, studies and audits."""
    from logbook.entries.studies import studies_of

    ref = str(entry_id)
    detail = entry_detail(store, ref)
    verdict = entry_verdict(store, ref, cache=False)
    comparisons = {c["candidate_name"]: c for c in verdict["comparisons"]}
    rows: list[dict[str, Any]] = []
    run_arms: dict[int, str] = {}
    run_environment = None
    with store.session() as session:
        pairs = runs_of(session, entry_id)
        audits = session.exec(select(Audit).where(Audit.hypothesis_id == entry_id).order_by(Audit.id)).all()
    roles = {arm.name: arm.role for arm, _ in pairs}
    for (arm_name, _seed), attempts in seed_attempts(pairs, lambda r: r.seed_origin in COUNTED_ORIGINS).items():
        # one row per seed: the attempt that decides it (a diverged one, else the latest), as the verdict counts it
        diverged = [a for a in attempts if a.status == "diverged"]
        run = diverged[0] if diverged else attempts[-1]
        run_arms[run.id] = arm_name
        if run.environment and run_environment is None:
            run_environment = run.environment
        row: dict[str, Any] = {
            "entry": detail["slug"], "run_id": run.id, "arm": arm_name, "role": roles[arm_name], "seed": run.seed,
            "origin": run.seed_origin, "status": run.status, "attempt": run.attempt, "attempts": len(attempts),
            "commit": run.git_commit or detail["git"]["commit"],
            "device": run.device, "wall_time_s": run.wall_time_s, "chain_head": detail["chain_head"],
        }
        for name, value in sorted((run.final_metrics or {}).items()):
            row[name] = value
        if detail["metric"] not in row:
            row[detail["metric"]] = None
        if detail["retrospective"]:
            row["retrospective"] = detail["retrospective_note"]
        comparison = comparisons.get(arm_name)
        row["verdict"] = comparison["verdict"] if comparison else verdict["verdict"]
        rows.append(row)
    return {
        "entry": detail,
        "verdict": verdict,
        "rows": rows,
        "curves": _curves(store, run_arms, detail["metric"]),
        "environment": environment_summary(run_environment or _registration_environment(store, entry_id)),
        "studies": studies_of(store, str(entry_id)),
        "audits": [
            {"id": a.id, "status": a.status, "outcome": a.outcome, "seeds_per_arm": a.n_seeds,
             "commitment": a.commitment, "started_at": iso(a.created_at), "concluded_at": iso(a.concluded_at)}
            for a in audits
        ],
    }


def _registration_environment(store: Store, entry_id: int) -> dict[str, Any] | None:
    with store.session() as session:
        return session.get(Hypothesis, entry_id).environment
