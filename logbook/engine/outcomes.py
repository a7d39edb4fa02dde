"""How a run's outcome is read and recorded: its result file, its log tail, its metric stream,
and the settling of runs whose worker is gone (orphans). The worker (local and Slurm) calls these;
nothing here runs a process.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlmodel import select as orm_select

from logbook.db.engine import Store
from logbook.db.models import Arm, Hypothesis, MetricPoint, Run, Worker, utcnow
from logbook.engine import child
from logbook.engine.ingest import insert_chunk, read_whole
from logbook.engine.procinfo import HOST, end_run_group, is_alive
from logbook.entries.chain import link_finished_runs

LOG_TAIL_CHARS = 4000


def log(message: str) -> None:
    print(f"{utcnow().isoformat(timespec='seconds')} {message}", flush=True)


def tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - chars))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def read_result(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / child.RESULT_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def result_fields(result: dict[str, Any]) -> dict[str, Any]:
    """Run columns from a child's result.json."""
    return {
        "status": result.get("status", "failed"),
        "final_metrics": result.get("final_metrics") or {},
        "environment": result.get("environment"),
        "determinism": result.get("determinism"),
        "predictions_path": result.get("predictions_path"),
        "predictions_sha256": result.get("predictions_sha256"),
        "error_tail": result.get("error"),
        "wall_time_s": result.get("wall_time_s"),
    }


def require_metric(fields: dict[str, Any], metric: str, log_tail: str) -> dict[str, Any]:
    """A run that succeeded without ever reporting the entry's registered metric has no result to
    judge: it fails, saying so, with its log tail (a run that diverged keeps its status)."""
    value = (fields.get("final_metrics") or {}).get(metric)
    if fields.get("status") != "succeeded" or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return {}
    return {"status": "failed", "error_tail": f"no value of {metric} in the output; log tail:\n{log_tail}"}


def recover_orphans(store: Store, *, stale_after_s: float = 600.0) -> list[int]:
    """Settle runs left 'running' by workers that are gone; returns the run ids settled.

    A worker on this host is gone when its (pid, start time) no longer runs; on another host,
    when it has not heartbeaten for ``stale_after_s``. A run that finished before its worker died
    is recovered from result.json (and its metric stream); the others are marked crashed.
    """
    now = utcnow()
    stale = now - timedelta(seconds=stale_after_s)
    settled: list[int] = []
    with store.session(write=True) as session:
        workers = {w.id: w for w in session.exec(orm_select(Worker).where(Worker.status == "running")).all()}
        dead_workers = set()
        for worker in workers.values():
            alive = is_alive(worker.pid, worker.pid_start_time, worker.host)
            if alive is False or (alive is None and _aware(worker.heartbeat_at) < stale):
                dead_workers.add(worker.id)
                worker.status, worker.stopped_at = "crashed", now
                session.add(worker)
        # Slurm runs outlive their worker by design: the next Slurm worker re-attaches to them.
        for run in session.exec(orm_select(Run).where(Run.status == "running", Run.executor == "local")).all():
            if run.worker_id in workers and run.worker_id not in dead_workers:
                continue  # its worker still runs and will settle it
            if run.pid and (run.host in (None, HOST)):
                end_run_group(run.pid, run.pid_start_time)  # stragglers of a run whose worker is gone
            run_dir = Path(run.run_dir) if run.run_dir else None
            result = read_result(run_dir) if run_dir else None
            if run_dir is not None:  # re-read the whole metric stream: the points written are complete
                session.exec(delete(MetricPoint).where(MetricPoint.run_id == run.id))
                insert_chunk(session.connection(), run.id, read_whole(run_dir / child.METRICS_FILE))
            if result is not None:
                fields = result_fields(result)
                metric = session.exec(
                    orm_select(Hypothesis.metric).join(Arm, Arm.hypothesis_id == Hypothesis.id).where(Arm.id == run.arm_id)
                ).one()
                log_tail = tail(Path(run.log_path)) if run.log_path else ""
                for key, value in {**fields, **require_metric(fields, metric, log_tail)}.items():
                    setattr(run, key, value)
            else:
                run.status = "crashed"
                run.error_tail = (
                    f"its worker (id {run.worker_id}) died while it ran; log tail:\n"
                    + (tail(Path(run.log_path)) if run.log_path else "")
                )[-LOG_TAIL_CHARS:]
            run.ended_at = now
            session.add(run)
            settled.append(run.id)
        session.flush()
        link_finished_runs(session.connection(), settled)  # each settled attempt joins its entry's chain
        session.commit()
    return settled


def _aware(moment):  # noqa: ANN001, ANN202
    """Stored times read back as aware UTC with current SQLModel; older ones may be naive."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)
