"""What the terminal app shows, read from the logbook as plain data. No Textual in here: screens
call these from thread workers and get back dicts and lists.

The logbook list's rows, filter and sort live in ``logbook.entries.listing`` (the CLI's `list`
shares them).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from sqlmodel import col, select

from logbook.db.engine import Store
from logbook.db.models import Arm, Audit, Hypothesis, MetricPoint, Run
from logbook.db.queries import dbapi, iso, open_audit_ids, runs_of, seed_shown
from logbook.entries.provenance import describe_tree
from logbook.entries.chain import one_check_per_entry
from logbook.entries.registry import entry_detail
from logbook.db.runstatus import FINISHED
from logbook.entries.verdicts import COUNTED_ORIGINS, entry_verdict
from logbook.export.escape import terminal, terminal_data


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
         "device": run.device, "attempt": run.attempt, "error": (run.error_tail or "").strip().splitlines()[-1:] or [""],
         "started_at": iso(run.started_at)}
        for arm, run in pairs
    ]
    counted = {r["id"] for r in runs if r["origin"] in COUNTED_ORIGINS}
    # Stored text is drawn on the terminal: no control character in it may reach the terminal.
    from logbook.entries.studies import studies_of

    return terminal_data({"entry": detail, "verdict": verdict, "runs": runs, "audits": audits_of(store, entry_id, runs),
                          "studies": studies_of(store, ref),
                          "curves": mean_curves(store, {r["id"]: r["arm"] for r in runs if r["id"] in counted})})


def compare_view(store: Store, refs: list[str]) -> dict[str, Any]:
    """What the compare screen shows: `logbook compare`'s result (logbook.entries.compare) and,
    per chosen arm (labelled ``id:arm``), the mean learning curve over its counted seeds."""
    from logbook.entries.compare import compare

    result = compare(store, refs)
    chosen = {(a["entry_id"], a["arm"]) for a in result["arms"]}
    run_arms: dict[int, str] = {}
    with store.session() as session:
        for entry_id in dict.fromkeys(a["entry_id"] for a in result["arms"]):
            for arm, run in runs_of(session, entry_id):
                if (entry_id, arm.name) in chosen and run.seed_origin in COUNTED_ORIGINS and run.status in FINISHED:
                    run_arms[run.id] = f"{entry_id}:{arm.name}"
    return terminal_data({**result, "curves": mean_curves(store, run_arms)})


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


def last_lines(path: Path, count: int, window: int = 1 << 16) -> str:
    """The last ``count`` lines of a text file, or as many as its last ``window`` bytes hold (only
    those are read: a long run's log grows while its screen re-reads it); "" when there is no file."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - window))
            data = handle.read()
    except OSError:
        return ""
    lines = data.decode(errors="replace").splitlines()
    if size > window and len(lines) > 1:
        lines = lines[1:]  # the window's first line is cut (a line longer than the window is shown cut)
    return "\n".join(lines[-count:])


def run_view(store: Store, run_id: int, log_lines: int = 40) -> dict[str, Any]:
    """One run: its row, log tail, curves and provenance."""
    with store.session() as session:
        run = session.get(Run, run_id)
        arm = session.get(Arm, run.arm_id)
        entry = session.get(Hypothesis, arm.hypothesis_id)
        shown = seed_shown(run, open_audit_ids(session))
        # through the driver: a third of the ORM's time for a long run, which its screen re-reads every tick while it runs
        curves: dict[str, list[float]] = defaultdict(list)
        for name, value in dbapi(session).execute(
                "SELECT name, value FROM metric_point WHERE run_id = ? ORDER BY name, step", (run_id,)):
            curves[name].append(math.nan if value is None else value)
    log = last_lines(Path(run.log_path), log_lines) if run.log_path else ""
    duration = run.wall_time_s
    slurm = None
    if run.executor == "slurm":  # where Slurm put it, and Slurm's own stderr for its task (srun, limits, signals)
        err = store.path.parent / "slurm" / f"{run.slurm_job_id}_0_log.err"
        slurm = {"job_id": run.slurm_job_id, "state": run.slurm_state, "node": run.node, "requeues": run.slurm_requeues,
                 "log": last_lines(err, log_lines) if run.slurm_job_id else ""}
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


# ---- runs in progress, origins, environments: shared by the entry, queue and run screens ------

ORIGIN_LABELS = {"planned": "planned", "extra": "added", "audit": "audit", "rerun": "rerun"}


def origin_label(origin: str, follow_up: bool = False) -> str:
    """Why a run exists, in words: planned, added (extra seeds), audit, rerun, robustness (a planned
    seed of a robustness follow-up entry) or variance (a variance study's run)."""
    if origin.startswith("variance"):
        return "variance"
    if follow_up and origin == "planned":
        return "robustness"
    return ORIGIN_LABELS.get(origin, origin)


def elapsed_s(started_at: str | None, now: datetime) -> float | None:
    """Seconds since an ISO start time (None when not started)."""
    if not started_at:
        return None
    return max(0.0, (now - datetime.fromisoformat(started_at.replace("Z", "+00:00"))).total_seconds())


def typical_wall_times(runs: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> dict[Any, float]:
    """Mean wall time of the succeeded runs per ``key`` (an arm), for estimating time left."""
    times: dict[Any, list[float]] = defaultdict(list)
    for r in runs:
        if r["status"] == "succeeded" and r.get("wall_time_s"):
            times[key(r)].append(r["wall_time_s"])
    return {k: sum(v) / len(v) for k, v in times.items()}


def duration(seconds: float | None) -> str:
    """A duration the way a clock reads: 42s, 3m05s, 2h07m; – when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress(elapsed: float | None, typical: float | None) -> tuple[str, str]:
    """What a running run's row says: its elapsed time with the estimated share done, and the
    time left estimated from the typical wall time of its arm ("–" where there is none yet)."""
    if elapsed is None:
        return "–", "–"
    if not typical:
        return duration(elapsed), "–"
    share = min(0.99, elapsed / typical)
    left = typical - elapsed
    return f"{duration(elapsed)} {share:.0%}", ("~" + duration(left)) if left > 0 else "overdue"


def queue_view(store: Store) -> dict[str, Any]:
    """The queue screen's data: the queue status, each run's origin in words, and each active
    run's elapsed time and time left."""
    from logbook.engine.queue import status

    info = status(store)
    with store.session() as session:
        follow_ups = set(session.exec(select(Hypothesis.id).where(col(Hypothesis.follows_id).is_not(None))).all())
    typical = typical_wall_times(info["runs"], lambda r: (r["entry_id"], r["arm"]))
    now = datetime.now(timezone.utc)
    for r in info["runs"]:
        r["origin_label"] = origin_label(r["origin"], r["entry_id"] in follow_ups)
        r["elapsed"], r["left"] = progress(elapsed_s(r["started_at"], now), typical.get((r["entry_id"], r["arm"])))
    return terminal_data(info)  # stored names are drawn on the terminal: no control character may reach it


BY_DESIGN = {"env.PYTHONHASHSEED": "the run's seed, set by the engine per run"}


def environment_changes(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[tuple[str, Any, Any]], list[tuple[str, Any, Any]]]:
    """The differences between two recorded environments, split into those worth a look and those
    that differ by design (the per-run seed variables the engine sets)."""
    changes = environment_diff(a, b)
    return [c for c in changes if c[0] not in BY_DESIGN], [c for c in changes if c[0] in BY_DESIGN]


def plural(n: int, word: str) -> str:
    """``1 difference``, ``2 differences``, ``no differences``."""
    return f"{n or 'no'} {word}{'' if n == 1 else 's'}"


def other_runs(store: Store, run_id: int) -> list[dict[str, Any]]:
    """The other finished runs of the same entry, newest first, to compare environments with."""
    with store.session() as session:
        arm_id = session.get(Run, run_id).arm_id
        entry_id = session.get(Arm, arm_id).hypothesis_id
        open_audits = open_audit_ids(session)
        rows = session.exec(select(Run, Arm.name).join(Arm, Arm.id == Run.arm_id)
                            .where(Arm.hypothesis_id == entry_id, Run.id != run_id, col(Run.status).in_(FINISHED))
                            .order_by(col(Run.id).desc())).all()
        return terminal_data([{"id": run.id, "arm": arm, "seed": run.seed if seed_shown(run, open_audits) else None,
                               "status": run.status, "origin": run.seed_origin, "host": (run.environment or {}).get("host")}
                              for run, arm in rows])


def entry_review(spec: Any) -> str:
    """A validated hypothesis file as the review step before registering shows it: metric and
    direction, δ, α, seeds, and per arm its config and the command it runs."""
    from logbook.engine.confirm import shown_command
    from logbook.entries.pilot import delta_text

    direction = "lower is better" if spec.goal == "minimize" else "higher is better"
    detail = {"min_effect": spec.min_effect, "min_effect_pilot": spec.min_effect_pilot, "min_effect_source": None}
    trainer = spec.trainer.to_dict()
    lines = [spec.title, f"metric {spec.metric} ({direction}) · δ = {delta_text(detail)} · α = {spec.alpha:g}",
             f"{spec.seeds} seeds per arm, drawn at registration · {len(spec.arms)} arms · "
             f"{spec.seeds * len(spec.arms)} runs planned", "arms:"]
    for arm in spec.arms:
        config = ", ".join(f"{k}={v!r}" for k, v in arm.config.items()) or "no config"
        lines.append(f"  {arm.name} ({arm.role}): {config}")
        shown = shown_command(arm.name, trainer, arm.config, 0)
        lines.append(f"    runs: {shown.text}" if shown else f"    runs: built-in trainer {spec.trainer.label} (installed)")
    if any(shown_command(a.name, trainer, a.config, 0) for a in spec.arms):
        lines.append("(commands shown for seed 0; each run gets its own seed)")
    return "\n".join(terminal(line) for line in lines)
