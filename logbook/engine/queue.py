"""The run queue as the CLI sees it: queue an entry's seeds, cancel, requeue, and report status.

Queued runs are rows with status ``queued``; workers claim them (see worker.py). Nothing here
starts processes except ``ensure_worker``, which starts a detached worker when none is running
for this database on this host.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from typing import Any

from sqlmodel import col, select

from logbook.db.engine import Store
from logbook.db.models import Arm, Hypothesis, Run, Worker, utcnow
from logbook.db.queries import SEED_HIDDEN, arms_of, iso, open_audit_ids, resolve_entry, seed_shown
from logbook.engine.procinfo import HOST, is_alive
from logbook.entries.registry import draw_seeds, require_registered
from logbook.errors import InputError
from logbook.db.paths import runs_dir
from logbook.db.runstatus import ACTIVE, RETRYABLE



# Seeds of one arm trained together in one process where the trainer can (train_batch): the
# built-in trainers take 3-8x less wall time this way (benchmarks/results/seed_batching*.md).
DEFAULT_BATCH = 32


def enqueue(store: Store, ref: str, extra_seeds: int | None = None) -> list[int]:
    """Queue an entry's planned seeds on every arm (those not queued or run yet), or, with
    ``extra_seeds``, that many new seeds per arm, drawn fresh and the same across arms."""
    with store.session(write=True) as session:
        entry = resolve_entry(session, ref)
        require_registered(entry)
        arms = arms_of(session, entry.id)
        existing = session.exec(
            select(Run.arm_id, Run.seed).join(Arm, Arm.id == Run.arm_id).where(Arm.hypothesis_id == entry.id)
        ).all()
        have = set(existing)
        if extra_seeds is not None:
            if extra_seeds < 1:
                raise InputError(f"--seeds: expected a whole number ≥ 1 of extra seeds per arm, got {extra_seeds}")
            used = {seed for _, seed in existing} | set(entry.planned_seeds)
            plan = [(seed, "extra") for seed in draw_seeds(extra_seeds, exclude=used)]
        else:
            plan = [(seed, "planned") for seed in entry.planned_seeds]
        now = utcnow()
        new_runs = [
            Run(arm_id=arm.id, seed=seed, seed_origin=origin, queued_at=now)
            for seed, origin in plan
            for arm in arms
            if (arm.id, seed) not in have
        ]
        session.add_all(new_runs)
        if new_runs:
            entry.status = "running"
            entry.updated_at = now
            session.add(entry)
        session.commit()
        return [run.id for run in new_runs]


def _target_runs(session, ref: str | None, run_id: int | None):  # noqa: ANN001, ANN202
    query = select(Run)
    if run_id is not None:
        query = query.where(Run.id == run_id)
    elif ref is not None:
        entry = resolve_entry(session, ref)
        query = query.join(Arm, Arm.id == Run.arm_id).where(Arm.hypothesis_id == entry.id)
    else:
        raise InputError("cancel/requeue: expected an ENTRY or --run ID")
    return query


def cancel(store: Store, ref: str | None = None, run_id: int | None = None) -> dict[str, int]:
    """Cancel queued runs at once; ask the workers running the others to stop them."""
    with store.session(write=True) as session:
        runs = session.exec(_target_runs(session, ref, run_id).where(col(Run.status).in_(ACTIVE))).all()
        counts = Counter()
        now = utcnow()
        for run in runs:
            if run.status == "queued":
                run.status, run.ended_at = "cancelled", now
                run.error_tail = "cancelled before it started"
                counts["cancelled"] += 1
            else:
                run.cancel_requested = True
                counts["stopping"] += 1
            session.add(run)
        session.commit()
        return dict(counts)


def requeue(store: Store, ref: str | None = None, run_id: int | None = None) -> list[int]:
    """Put failed, crashed, cancelled or diverged runs back in the queue for another attempt."""
    with store.session(write=True) as session:
        runs = session.exec(_target_runs(session, ref, run_id).where(col(Run.status).in_(RETRYABLE))).all()
        now = utcnow()
        for run in runs:
            run.status, run.attempt, run.queued_at = "queued", run.attempt + 1, now
            run.cancel_requested = False
            run.started_at = run.ended_at = run.heartbeat_at = None
            run.pid = run.pid_start_time = run.worker_id = run.exit_code = None
            session.add(run)
        session.commit()
        return [run.id for run in runs]


def live_workers(store: Store) -> list[Worker]:
    """Workers recorded as running whose process still runs (or runs on another host)."""
    with store.session() as session:
        workers = session.exec(select(Worker).where(Worker.status == "running")).all()
    return [w for w in workers if is_alive(w.pid, w.pid_start_time, w.host) is not False]


def ensure_worker(store: Store, *, slots_per_gpu: int = 1, cpu_slots: int | None = None, idle_exit: float = 60.0,
                  batch: int = DEFAULT_BATCH) -> int | None:
    """Start a detached worker for this database unless one runs on this host. Returns its pid.

    The worker gets a new session and stdin from /dev/null, so closing the terminal (SIGHUP)
    or the SSH connection does not stop it or its runs; its output goes to ``workers/``.
    """
    if any(w.host == HOST for w in live_workers(store)):
        return None
    log_dir = runs_dir(store.path).parent / "workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"worker-{utcnow().strftime('%Y%m%dT%H%M%S%f')}.log"
    argv = [sys.executable, "-m", "logbook", "--db", str(store.path), "worker", "--idle-exit", str(idle_exit),
            "--slots-per-gpu", str(slots_per_gpu), "--batch", str(batch), "--log-path", str(log_path)]
    if cpu_slots is not None:
        argv += ["--cpu-slots", str(cpu_slots)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return process.pid


def entry_run_ids(store: Store, entry_id: int) -> list[int]:
    with store.session() as session:
        return list(session.exec(select(Run.id).join(Arm, Arm.id == Run.arm_id).where(Arm.hypothesis_id == entry_id)).all())


def entry_progress(store: Store, entry_id: int) -> Counter:
    with store.session() as session:
        statuses = session.exec(
            select(Run.status).join(Arm, Arm.id == Run.arm_id).where(Arm.hypothesis_id == entry_id)
        ).all()
    return Counter(statuses)


def status(store: Store, ref: str | None = None, recent: int = 50) -> dict[str, Any]:
    """Workers with their slots, and runs: all of one entry, or the active and most recent ones."""
    with store.session() as session:
        workers = session.exec(select(Worker).order_by(col(Worker.id).desc()).limit(20)).all()
        query = (
            select(Run, Arm.name, Hypothesis.slug, Hypothesis.id)
            .join(Arm, Arm.id == Run.arm_id)
            .join(Hypothesis, Hypothesis.id == Arm.hypothesis_id)
        )
        if ref is not None:
            entry = resolve_entry(session, ref)
            rows = session.exec(query.where(Hypothesis.id == entry.id).order_by(Run.id)).all()
        else:
            active = session.exec(query.where(col(Run.status).in_(ACTIVE)).order_by(Run.id)).all()
            done = session.exec(
                query.where(col(Run.status).not_in(ACTIVE)).order_by(col(Run.ended_at).desc()).limit(recent)
            ).all()
            rows = list(active) + list(reversed(done))
        counts = Counter(session.exec(select(Run.status)).all())
        open_audits = open_audit_ids(session)
    return {
        "db": str(store.path),
        "workers": [
            {
                "id": w.id, "pid": w.pid, "host": w.host, "slots": w.slots, "status": w.status,
                "alive": is_alive(w.pid, w.pid_start_time, w.host) if w.status == "running" else False,
                "started_at": iso(w.started_at), "heartbeat_at": iso(w.heartbeat_at), "log_path": w.log_path,
            }
            for w in workers
        ],
        "counts": dict(sorted(counts.items())),
        "runs": [
            {
                "id": run.id, "entry": slug, "entry_id": entry_id, "arm": arm,
                **({"seed": run.seed} if seed_shown(run, open_audits) else {"seed": None, "seed_hidden": SEED_HIDDEN}),
                "origin": run.seed_origin, "status": run.status, "attempt": run.attempt, "worker": run.worker_id,
                "device": run.device, "gpu": run.gpu, "pid": run.pid, "started_at": iso(run.started_at),
                "ended_at": iso(run.ended_at), "wall_time_s": run.wall_time_s, "exit_code": run.exit_code,
                "error": (run.error_tail or "").strip().splitlines()[-1] if run.error_tail else None,
                "final_metrics": run.final_metrics,
                "log_path": run.log_path if seed_shown(run, open_audits) else None,  # its folder is named by the seed
            }
            for run, arm, slug, entry_id in rows
        ],
    }
