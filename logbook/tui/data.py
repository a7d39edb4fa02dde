"""What the terminal app shows, read from the logbook as plain data. No Textual in here: screens
call these from thread workers and get back dicts and lists.

The logbook list reads the cached verdict of each entry (computed by `logbook verdict` or when an
entry is opened), so it stays fast with tens of thousands of entries.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import case, func
from sqlmodel import col, select

from logbook.db.engine import Store
from logbook.db.models import Arm, Audit, Hypothesis, MetricPoint, Run
from logbook.db.queries import iso, latest_attempt, open_audit_ids, runs_of, seed_shown
from logbook.entries.provenance import describe_tree
from logbook.entries.chain import one_check_per_entry
from logbook.entries.registry import entry_detail
from logbook.db.runstatus import ACTIVE, FINISHED
from logbook.entries.verdicts import COUNTED_ORIGINS, entry_verdict
from logbook.export.escape import terminal_data


def entry_rows(store: Store) -> list[dict[str, Any]]:
    """One row per entry for the logbook screen."""
    # one per seed and arm: a retried attempt is superseded by its retry
    counted = (col(Run.status).in_(FINISHED)) & (col(Run.seed_origin).in_(COUNTED_ORIGINS)) & latest_attempt()
    with store.session() as session:
        # Plain columns, not ORM objects: building 10,000 model instances costs more than the query.
        entries = session.exec(select(
            Hypothesis.id, Hypothesis.slug, Hypothesis.title, Hypothesis.metric, Hypothesis.goal, Hypothesis.seeds_per_arm,
            Hypothesis.verdict, Hypothesis.verdict_detail, Hypothesis.status, Hypothesis.tags, Hypothesis.updated_at,
            Hypothesis.retrospective,
        ).order_by(Hypothesis.id)).all()
        arm_counts = dict(session.exec(select(Arm.hypothesis_id, func.count()).group_by(Arm.hypothesis_id)).all())
        # One pass over the runs (joined through ix_run_arm_id) for every per-entry figure.
        per_entry = {
            entry_id: (finished or 0, active or 0, last)
            for entry_id, finished, active, last in session.exec(
                select(Arm.hypothesis_id, func.sum(case((counted, 1), else_=0)),
                       func.sum(case((col(Run.status).in_(ACTIVE), 1), else_=0)), func.max(Run.ended_at))
                .join(Run, Run.arm_id == Arm.id).group_by(Arm.hypothesis_id)).all()
        }
    rows = []
    for e in entries:
        detail = e.verdict_detail or {}
        comparisons = detail.get("comparisons") or []
        best = max(comparisons, key=lambda c: _finite(c.get("effect"), -math.inf), default=None)
        finished, active, last_run = per_entry.get(e.id, (0, 0, None))
        last = max(filter(None, (iso(e.updated_at), iso(last_run))), default=None)
        arms = arm_counts.get(e.id, 0)
        rows.append({
            "id": e.id, "slug": e.slug, "title": e.title, "metric": e.metric, "goal": e.goal, "arms": arms,
            "done": finished, "planned": arms * e.seeds_per_arm, "active": active,
            "effect": None if best is None else best.get("effect"),
            "ci_low": None if best is None else best.get("ci_low"),
            "ci_high": None if best is None else best.get("ci_high"),
            "verdict": e.verdict or "pending", "status": e.status, "tags": list(e.tags or []),
            "last_activity": last, "retrospective": bool(e.retrospective),
            "haystack": f"{e.title} {e.slug} {e.metric}{' retrospective' if e.retrospective else ''}".lower(),
        })
    return rows


def _finite(value: Any, default: float) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else default


def matches(row: dict[str, Any], query: str) -> bool:
    """The `/` filter: words match title, slug or metric; ``tag:X`` and ``verdict:X`` match exactly."""
    for word in query.lower().split():
        if word.startswith("tag:"):
            if word[4:] not in [t.lower() for t in row["tags"]]:
                return False
        elif word.startswith("verdict:"):
            if row["verdict"] != word[8:]:
                return False
        elif word not in row["haystack"]:
            return False
    return True


def entry_view(store: Store, entry_id: int) -> dict[str, Any]:
    """Everything the entry screen shows; computes (and caches) the verdict."""
    ref = str(entry_id)
    with one_check_per_entry():  # the detail and the verdict both report the chain check
        detail = entry_detail(store, ref)
        verdict = entry_verdict(store, ref, cache=not store.read_only)
    with store.session() as session:
        pairs = runs_of(session, entry_id)
        open_audits = open_audit_ids(session)
    runs = [
        {"id": run.id, "arm": arm.name, "seed": run.seed if seed_shown(run, open_audits) else None, "origin": run.seed_origin, "status": run.status,
         "value": (run.final_metrics or {}).get(detail["metric"]), "wall_time_s": run.wall_time_s,
         "device": run.device, "attempt": run.attempt, "error": (run.error_tail or "").strip().splitlines()[-1:] or [""]}
        for arm, run in pairs
    ]
    counted = {r["id"] for r in runs if r["origin"] in COUNTED_ORIGINS}
    # Stored text is drawn on the terminal: no control character in it may reach the terminal.
    from logbook.entries.studies import studies_of

    return terminal_data({"entry": detail, "verdict": verdict, "runs": runs, "audits": audits_of(store, entry_id, runs),
                          "studies": studies_of(store, ref),
                          "curves": mean_curves(store, {r["id"]: r["arm"] for r in runs if r["id"] in counted})})


def audits_of(store: Store, entry_id: int, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each audit of the entry: its outcome, and per candidate the original and the audit effect."""
    with store.session() as session:
        audits = session.exec(select(Audit).where(Audit.hypothesis_id == entry_id).order_by(Audit.id)).all()
        audit_of_run = dict(session.exec(select(Run.id, Run.audit_id).where(col(Run.audit_id).in_([a.id for a in audits]))).all())
    out = []
    for a in audits:
        mine = [r for r in runs if audit_of_run.get(r["id"]) == a.id]
        original = {c["candidate_name"]: c for c in (a.original_verdict or {}).get("comparisons", [])}
        audited = {c["candidate_name"]: c for c in (a.audit_verdict or {}).get("comparisons", [])}
        out.append({
            "id": a.id, "status": a.status, "outcome": a.outcome, "seeds_per_arm": a.n_seeds,
            "finished": sum(r["status"] in FINISHED for r in mine), "runs": len(mine),
            "candidates": [{"name": name, "original": original[name], "audit": audited.get(name)} for name in original],
        })
    return out


def mean_curves(store: Store, run_arms: dict[int, str], name: str | None = None) -> dict[str, Any]:
    """Per arm, the mean over seeds of one logged metric per step (``loss`` if present), and the
    band: the lowest and highest seed at each step."""
    if not run_arms:
        return {}
    with store.session() as session:
        names = session.exec(select(MetricPoint.name).where(col(MetricPoint.run_id).in_(list(run_arms))).distinct()).all()
        if not names:
            return {}
        name = name if name in names else ("loss" if "loss" in names else sorted(names)[0])
        rows = session.exec(select(MetricPoint.run_id, MetricPoint.step, MetricPoint.value)
                            .where(col(MetricPoint.run_id).in_(list(run_arms)), MetricPoint.name == name)).all()
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run_id, step, value in rows:
        if value is not None and math.isfinite(value):
            sums[run_arms[run_id]][step].append(value)
    return {
        "name": name,
        "arms": {arm: [sum(v) / len(v) for _, v in sorted(steps.items())] for arm, steps in sums.items()},
        "low": {arm: [min(v) for _, v in sorted(steps.items())] for arm, steps in sums.items()},
        "high": {arm: [max(v) for _, v in sorted(steps.items())] for arm, steps in sums.items()},
    }


def run_view(store: Store, run_id: int, log_lines: int = 40) -> dict[str, Any]:
    """One run: its row, log tail, curves and provenance."""
    with store.session() as session:
        run = session.get(Run, run_id)
        arm = session.get(Arm, run.arm_id)
        entry = session.get(Hypothesis, arm.hypothesis_id)
        shown = seed_shown(run, open_audit_ids(session))
        points = session.exec(select(MetricPoint.name, MetricPoint.step, MetricPoint.value)
                              .where(MetricPoint.run_id == run_id).order_by(MetricPoint.name, MetricPoint.step)).all()
    curves: dict[str, list[float]] = defaultdict(list)
    for name, _, value in points:
        curves[name].append(math.nan if value is None else value)
    log = ""
    if run.log_path and Path(run.log_path).exists():
        log = "\n".join(Path(run.log_path).read_text(errors="replace").splitlines()[-log_lines:])
    duration = run.wall_time_s
    slurm = None
    if run.executor == "slurm":  # where Slurm put it, and Slurm's own stderr for its task (srun, limits, signals)
        err = store.path.parent / "slurm" / f"{run.slurm_job_id}_0_log.err"
        slurm = {"job_id": run.slurm_job_id, "state": run.slurm_state, "node": run.node, "requeues": run.slurm_requeues,
                 "log": "\n".join(err.read_text(errors="replace").splitlines()[-log_lines:]) if run.slurm_job_id
                 and err.exists() else ""}
    return {
        "id": run.id, "entry": entry.slug, "entry_id": entry.id, "arm": arm.name, "seed": run.seed if shown else None,
        "status": run.status,
        "origin": run.seed_origin, "attempt": run.attempt, "device": run.device, "gpu": run.gpu, "duration_s": duration,
        "started_at": iso(run.started_at), "ended_at": iso(run.ended_at), "final_metrics": run.final_metrics or {},
        "error": run.error_tail, "log": log, "curves": dict(curves), "commit": run.git_commit or entry.git_commit,
        "diff": entry.git_diff or "", "tree": describe_tree(entry.git_dirty, entry.git_diff, entry.git_untracked),
        "environment": run.environment or {}, "determinism": run.determinism or {},
        "batch_size": run.batch_size, "slurm": slurm,
    }


def environment_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Keys whose values differ between two recorded environments (nested keys joined by dots)."""
    out = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            out += environment_diff(left, right, f"{prefix}{key}.")
        elif left != right:
            out.append((f"{prefix}{key}", left, right))
    return out


def previous_run(store: Store, run_id: int) -> int | None:
    """Another finished run of the same entry to compare environments with (the one before)."""
    with store.session() as session:
        arm_id = session.get(Run, run_id).arm_id
        entry_id = session.get(Arm, arm_id).hypothesis_id
        return session.exec(select(Run.id).join(Arm, Arm.id == Run.arm_id)
                            .where(Arm.hypothesis_id == entry_id, Run.id != run_id, col(Run.status).in_(FINISHED))
                            .order_by(col(Run.id).desc())).first()
