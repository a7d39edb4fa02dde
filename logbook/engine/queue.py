"""The run queue as the CLI sees it: queue an entry's seeds, cancel, requeue, and report status.

Queued runs are rows with status ``queued``; workers claim them (see worker.py). Nothing here
starts processes except ``ensure_worker``, which starts a detached worker when none is running
for this database on this host.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from logbook.db import reads
from logbook.db.engine import Store
from logbook.db.models import Arm, Run, Worker, utcnow
from logbook.db.queries import arms_of, latest_attempt, resolve_entry
from logbook.engine.procinfo import HOST, is_alive, process_start_time
from logbook.entries.chain import link_finished_runs, require_intact
from logbook.entries.retro import rerun_gaps
from logbook.entries.withdraw import require_not_withdrawn
from logbook.errors import InputError
from logbook.db.paths import WORKER_LOCK_SUFFIX, runs_dir
from logbook.db.runstatus import ACTIVE, DEFAULT_BATCH, RETRYABLE  # noqa: F401 (DEFAULT_BATCH: re-exported)



# Seeds of one arm trained together in one process where the trainer can (train_batch): the
# built-in trainers take 3-8x less wall time this way (benchmarks/results/seed_batching*.md).


def enqueue(store: Store, ref: str, extra_seeds: int | None = None, *, executor: str = "local",
            executor_options: dict[str, Any] | None = None) -> list[int]:
    """Queue an entry's planned seeds on every arm (those not queued or run yet), or, with
    ``extra_seeds``, that many new seeds per arm, drawn fresh and the same across arms; they run
    on ``executor`` (local, or slurm with its resolved options). A tampered entry is refused
    (TamperedError)."""
    from logbook.entries.registry import draw_seeds, require_registered  # parsing entry files: not for `status`
    from logbook.entries.seeding import held_streams  # numpy: not for `status`

    with store.session() as session:
        registered = resolve_entry(session, ref).registered_at is not None
    if registered:
        require_intact(store, ref)
    with store.session(write=True) as session:
        entry = resolve_entry(session, ref)
        require_registered(entry)
        require_not_withdrawn(session, entry, "run")
        if rerun_gaps(entry):
            raise InputError(f"ENTRY: {entry.slug} was imported and cannot be rerun: {'; '.join(rerun_gaps(entry))}")
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
        study = (entry.registered_content or {}).get("variance_study")
        new_runs = [
            Run(arm_id=arm.id, seed=seed, seed_origin=origin, queued_at=now, executor=executor,
                executor_options=executor_options if executor == "slurm" else None, streams=held_streams(study, seed))
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
        if session.get(Run, run_id) is None:
            raise InputError(f"--run: no run {run_id} in this logbook; expected a run id from `logbook status`")
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
        session.flush()
        link_finished_runs(session.connection(), [run.id for run in runs if run.status == "cancelled"])
        session.commit()
        on_slurm = [r.slurm_job_id for r in runs if r.executor == "slurm" and r.status == "running"
                    and r.slurm_job_id and r.slurm_job_id[0].isdigit()]
        if on_slurm:  # leave the queue now, even with no worker running; the worker records it
            subprocess.run(["scancel", *sorted(set(on_slurm))], capture_output=True, timeout=120, check=False)
        audited = {run.arm_id for run in runs if run.audit_id is not None and run.status == "cancelled"}
        entry_ids = set(session.exec(select(Arm.hypothesis_id).where(col(Arm.id).in_(audited))).all()) if audited else set()
    if entry_ids:  # statistics and scipy come with audits: not for `status`, which imports this module
        from logbook.entries.audit import conclude_ended_audits

    for entry_id in sorted(entry_ids):  # an audit whose last runs were cancelled before they started ends here
        conclude_ended_audits(store, entry_id)
    return dict(counts)


def requeue(store: Store, ref: str | None = None, run_id: int | None = None) -> list[int]:
    """Queue another attempt of failed, crashed, cancelled or diverged runs: a new run row for the
    same arm, seed, origin, audit and working folder, with ``attempt`` one higher and ``retry_of``
    the attempt it retries. The finished attempt stays as it was (and stays counted). Only the
    latest attempt of a seed is retried. A tampered entry is refused (TamperedError). Returns the
    new runs' ids."""
    with store.session() as session:
        entry_ids = set(session.exec(select(Arm.hypothesis_id).join(Run, Run.arm_id == Arm.id)
                                     .where(col(Run.id).in_(select(_target_runs(session, ref, run_id).subquery().c.id)))).all())
    for entry_id in sorted(entry_ids):
        require_intact(store, str(entry_id))
    with store.session(write=True) as session:
        runs = session.exec(_target_runs(session, ref, run_id).where(col(Run.status).in_(RETRYABLE))).all()
        retried = set(session.exec(select(Run.retry_of).where(col(Run.retry_of).in_([r.id for r in runs]))).all())
        now = utcnow()
        again = [
            Run(arm_id=run.arm_id, seed=run.seed, seed_origin=run.seed_origin, audit_id=run.audit_id, workdir=run.workdir,
                rerun_of=run.rerun_of, attempt=run.attempt + 1, retry_of=run.id, queued_at=now, streams=run.streams)
            for run in runs
            if run.id not in retried
        ]
        session.add_all(again)
        session.commit()
        return [run.id for run in again]


def executors_of(store: Store, run_ids: list[int]) -> list[str]:
    """The executors these runs are queued for (local, slurm), for starting the right workers."""
    if not run_ids:
        return []
    with store.session() as session:
        return sorted(set(session.exec(select(Run.executor).where(col(Run.id).in_(run_ids))).all()))


def live_workers(store: Store) -> list[Worker]:
    """Workers recorded as running whose process still runs (or runs on another host)."""
    with store.session() as session:
        workers = session.exec(select(Worker).where(Worker.status == "running")).all()
    return [w for w in workers if is_alive(w.pid, w.pid_start_time, w.host) is not False]


def worker_kind(worker: Worker) -> str:
    """"slurm" for a worker that sends runs to Slurm, else "local"."""
    return "slurm" if any(s.get("device") == "slurm" for s in worker.slots or []) else "local"


def ensure_worker(store: Store, *, slots_per_gpu: int = 1, cpu_slots: int | None = None, idle_exit: float = 60.0,
                  batch: int = DEFAULT_BATCH, executor: str = "local") -> int | None:
    """Start a detached worker for this database unless one runs on this host. Returns its pid.

    The worker gets a new session and stdin from /dev/null, so closing the terminal (SIGHUP)
    or the SSH connection does not stop it or its runs; its output goes to ``workers/``.

    Check and start happen under an exclusive lock on ``worker_lock_path`` beside the database,
    which also names the last worker started (host, pid, start time): a worker still starting has
    not registered itself yet, so two `logbook run` at the same moment start one worker, not two.
    """
    lock_path = worker_lock_path(store.path, executor)
    with open(lock_path, "a+", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        if _recorded_worker_alive(lock.read()) or any(w.host == HOST and worker_kind(w) == executor for w in live_workers(store)):
            return None
        pid = _start_detached_worker(store, slots_per_gpu=slots_per_gpu, cpu_slots=cpu_slots, idle_exit=idle_exit,
                                     batch=batch, executor=executor)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{HOST} {pid} {process_start_time(pid)}\n")
        lock.flush()
        return pid


def worker_lock_path(db_path: Path, executor: str = "local") -> Path:
    """The lock around starting a worker of one kind (local, slurm) for this database."""
    suffix = WORKER_LOCK_SUFFIX if executor == "local" else f"{WORKER_LOCK_SUFFIX}.{executor}"
    return db_path.with_name(db_path.name + suffix)


def _recorded_worker_alive(text: str) -> bool:
    """Whether the worker named in the lock file (``host pid start_time``) still runs here."""
    parts = text.split()
    if len(parts) != 3 or parts[0] != HOST or not parts[1].isdigit():
        return False
    start = None if parts[2] == "None" else float(parts[2])
    return bool(is_alive(int(parts[1]), start, HOST))


def _start_detached_worker(store: Store, *, slots_per_gpu: int, cpu_slots: int | None, idle_exit: float,
                           batch: int, executor: str) -> int:
    log_dir = runs_dir(store.path).parent / "workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"worker-{utcnow().strftime('%Y%m%dT%H%M%S%f')}.log"
    argv = [sys.executable, "-m", "logbook", "--db", str(store.path), "worker", "--idle-exit", str(idle_exit),
            "--slots-per-gpu", str(slots_per_gpu), "--batch", str(batch), "--log-path", str(log_path)]
    if cpu_slots is not None:
        argv += ["--cpu-slots", str(cpu_slots)]
    if executor != "local":
        argv += ["--executor", executor]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return process.pid


def entry_run_ids(store: Store, entry_id: int) -> list[int]:
    with store.session() as session:
        return list(session.exec(select(Run.id).join(Arm, Arm.id == Run.arm_id).where(Arm.hypothesis_id == entry_id)).all())


def entry_progress(store: Store, entry_id: int) -> Counter:
    """An entry's runs by status, one per seed and arm (its latest attempt)."""
    with store.session() as session:
        statuses = session.exec(
            select(Run.status).join(Arm, Arm.id == Run.arm_id).where(Arm.hypothesis_id == entry_id, latest_attempt())
        ).all()
    return Counter(statuses)


def status(store: Store, ref: str | None = None, recent: int = 50) -> dict[str, Any]:
    """Workers with their slots, and runs: all of one entry, or the active and most recent ones
    (``db.reads.status_report``, which `logbook status` also reads without SQLAlchemy)."""
    entry_id = None
    if ref is not None:
        with store.session() as session:
            entry_id = resolve_entry(session, ref).id
    with store.connection() as conn:
        return reads.status_report(conn, store.path, entry_id, recent, alive=is_alive)
