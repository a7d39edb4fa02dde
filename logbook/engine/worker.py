"""The worker: claims queued runs, runs each through an executor, and records how it ended.

One worker is the only writer of its runs' rows. It claims a queued run atomically (``BEGIN
IMMEDIATE``, then an UPDATE that only succeeds while the run is still queued), so two workers on
one database never run the same run. While runs execute it streams their metric points into the
database in batches, heartbeats, honours cancel requests and enforces timeouts. When a run's
process ends it reads ``result.json`` from the run folder and marks the run succeeded, failed,
diverged, crashed or cancelled.

Never lose a result, never leave a run running forever: when any worker starts, and every
``orphan_check_s`` while one runs, runs whose worker process is gone (checked by host, pid and
process start time, not pid alone) are recovered from their ``result.json`` if the run had
finished, and otherwise marked crashed (``logbook/engine/outcomes.py``); whatever is left of such a run's process group is
killed. A worker stopped by SIGTERM, SIGINT or SIGHUP sends its runs SIGTERM, SIGKILLs them after a
grace period (``grace_s``, default 10 s; a second signal cuts it short), and puts the runs that did
not finish back in the queue. Its signal handlers are in place before it registers itself, so no
signal can leave a registered worker behind that never said it stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from logbook.db.engine import Store
from logbook.db.models import Arm, Hypothesis, MetricPoint, Run, Worker, utcnow
from logbook.engine import child
from logbook.engine.executor import Ended, Executor, Job, Slot
from logbook.engine.ingest import PointStream, read_chunk, write_chunks
from logbook.engine.outcomes import log, read_result, recover_orphans, require_metric, result_fields, tail
from logbook.engine.procinfo import HOST, this_process
from logbook.db.paths import run_folder, runs_dir
from logbook.entries.chain import link_finished_runs
from logbook.entries.provenance import head_commit
from logbook.db.runstatus import ACTIVE
from logbook.entries.seeding import determinism_env

DEFAULT_GRACE_S = 10.0


@dataclass
class WorkerLoop:
    store: Store
    executor: Executor
    once: bool = False
    idle_exit_s: float | None = None
    poll_s: float = 0.2
    heartbeat_s: float = 5.0
    orphan_check_s: float = 30.0
    log_path: str | None = None
    worker_id: int | None = None
    stopping: str | None = None
    streams: dict[int, PointStream] = field(default_factory=dict)
    run_dirs: dict[int, Path] = field(default_factory=dict)
    entry_of: dict[int, int] = field(default_factory=dict)
    log_paths: dict[int, Path] = field(default_factory=dict)
    batch: int = 1
    batchable: dict[str, bool] = field(default_factory=dict)
    executor_name: str = "local"  # this worker claims only runs queued for its kind of executor
    grace_s: float = DEFAULT_GRACE_S
    hurry: bool = False  # a second stop signal: no more grace

    # ---- lifecycle -------------------------------------------------------------------------

    def _register(self) -> None:
        host, pid, start = this_process()
        with self.store.session(write=True) as session:
            worker = Worker(host=host, pid=pid, pid_start_time=start, slots=[s.to_dict() for s in self.executor.slots],
                            log_path=self.log_path)
            session.add(worker)
            session.commit()
            self.worker_id = worker.id
        log(f"worker {self.worker_id} (pid {pid} on {host}) with {len(self.executor.slots)} slots: "
            + ", ".join(f"{s.device}{'' if s.gpu is None else ':' + s.gpu}" for s in self.executor.slots))

    def _on_signal(self, signum, _frame) -> None:  # noqa: ANN001
        if self.stopping:
            self.hurry = True
        self.stopping = signal.Signals(signum).name

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # before registering: see the docstring
            signal.signal(sig, self._on_signal)
        self._register()
        recovered = recover_orphans(self.store)
        if recovered:
            log(f"settled {len(recovered)} orphaned runs: {recovered}")
        last_heartbeat = last_orphans = last_busy = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                try:
                    if not self.stopping:
                        self._start_runs()
                    finished = self.executor.poll()
                    for ended in finished:
                        self._finish(ended)
                    self._ingest()
                    if now - last_heartbeat >= self.heartbeat_s:
                        self._heartbeat()
                        last_heartbeat = now
                    self._honour_cancels()
                    if now - last_orphans >= self.orphan_check_s:
                        recover_orphans(self.store)
                        last_orphans = now
                    queued = self._any_queued()
                except OperationalError as exc:  # the database stayed locked past the busy timeout
                    log(f"database busy, retrying: {exc.orig}")
                    time.sleep(1.0)
                    continue
                active = self.executor.active_run_ids()
                if active or queued:
                    last_busy = now
                if self.stopping:
                    break
                if not active and self.once and not queued:
                    break
                if not active and self.idle_exit_s is not None and now - last_busy >= self.idle_exit_s:
                    log(f"idle for {self.idle_exit_s:g} s, exiting")
                    break
                if not finished:  # a slot just freed up: claim the next run at once
                    self.executor.wait(self.poll_s)
        finally:
            self._shutdown()
        return 0

    def _shutdown(self) -> None:
        interrupted = self.executor.active_run_ids()
        if interrupted:
            log(f"stopping runs {interrupted}: SIGTERM, then SIGKILL after {self.grace_s:g} s")
        self.executor.stop_all("worker stopping", 0.0 if self.hurry else self.grace_s)
        hurried = self.hurry
        deadline = time.monotonic() + self.grace_s + 10
        while self.executor.active_run_ids() and time.monotonic() < deadline:
            if self.hurry and not hurried:
                log("second stop signal: killing the runs now")
                self.executor.stop_all("worker stopping", 0.0)
                hurried = True
            for ended in self.executor.poll():
                self._finish(ended)
            self._ingest()
            time.sleep(0.05)
        self._ingest()
        self.executor.close()
        if self.worker_id is None:  # stopped before it could register
            return
        with self.store.session(write=True) as session:
            worker = session.get(Worker, self.worker_id)
            worker.status, worker.stopped_at, worker.heartbeat_at = "stopped", utcnow(), utcnow()
            session.add(worker)
            session.commit()
        log(f"worker {self.worker_id} stopped" + (f" by {self.stopping}" if self.stopping else ""))

    # ---- claiming and starting -------------------------------------------------------------

    def _any_queued(self) -> bool:
        with self.store.engine.connect() as conn:
            return conn.execute(
                select(Run.id).where(Run.status == "queued", Run.executor == self.executor_name).limit(1)
            ).first() is not None

    def _can_batch(self, trainer: dict[str, Any]) -> bool:
        """Ask a fresh interpreter once per trainer (the worker never imports trainers or torch)."""
        key = json.dumps(trainer, sort_keys=True)
        if key not in self.batchable:
            out = subprocess.run([sys.executable, "-m", "logbook.engine.child", "--probe", key],
                                 capture_output=True, text=True, timeout=300, check=False)
            try:
                self.batchable[key] = bool(json.loads(out.stdout.strip().splitlines()[-1])["batch"])
            except (ValueError, IndexError, KeyError):
                self.batchable[key] = False
            log(f"trainer {trainer.get('name') or 'command'} {'trains' if self.batchable[key] else 'does not train'} seeds in batches")
        return self.batchable[key]

    def claim(self, slot: Slot) -> list[int]:
        """Atomically take the oldest queued run, and with ``batch`` > 1 and a trainer that can,
        up to ``batch`` − 1 more queued runs of the same arm (same working folder), for one process."""
        oldest = (
            select(Run.id, Run.arm_id, Run.workdir, Hypothesis.trainer)
            .join(Arm, Arm.id == Run.arm_id).join(Hypothesis, Hypothesis.id == Arm.hypothesis_id)
            .where(Run.status == "queued", Run.executor == self.executor_name).order_by(Run.queued_at, Run.id).limit(1)
        )
        batching = False
        if self.batch > 1:  # ask before taking the write lock: the probe imports the trainer (seconds)
            with self.store.engine.connect() as conn:
                peek = conn.execute(oldest).first()
            batching = peek is not None and self._can_batch(peek.trainer)
        now = utcnow()
        with self.store.begin_write() as conn:
            first = conn.execute(oldest).first()
            if first is None:
                return []
            ids = [first.id]
            if batching and self.batchable.get(json.dumps(first.trainer, sort_keys=True)):
                same_place = Run.workdir.is_(None) if first.workdir is None else Run.workdir == first.workdir
                ids += conn.execute(
                    select(Run.id).where(Run.status == "queued", Run.executor == self.executor_name,
                                         Run.arm_id == first.arm_id, Run.id != first.id, same_place)
                    .order_by(Run.queued_at, Run.id).limit(self.batch - 1)
                ).scalars().all()
            batch_id = uuid.uuid4().hex[:12] if len(ids) > 1 else None
            conn.execute(
                update(Run).where(col(Run.id).in_(ids), Run.status == "queued").values(
                    status="running", worker_id=self.worker_id, host=HOST, started_at=now, heartbeat_at=now,
                    device=slot.device, gpu=slot.gpu, cancel_requested=False, batch_id=batch_id, batch_size=len(ids),
                )
            )
        return ids

    def _start_runs(self) -> None:
        for slot in self.executor.free_slots():
            run_ids = self.claim(slot)
            if not run_ids:
                return
            self._launch(run_ids, slot)

    def _launch(self, run_ids: list[int], slot: Slot) -> None:
        with self.store.session(write=True) as session:
            runs = [session.get(Run, run_id) for run_id in run_ids]
            arm = session.get(Arm, runs[0].arm_id)
            entry = session.get(Hypothesis, arm.hypothesis_id)
            where = runs[0].workdir or entry.repo_root  # audits and reruns run in a checkout of a past commit
            cwd = Path(where) if where and Path(where).is_dir() else None
            timeout = entry.trainer.get("timeout")
            folders = []
            for run in runs:
                run_dir = run_folder(self.store.path, entry.slug, arm.name, run.seed, run.id)
                if run_dir.exists():  # a requeued run starts from a clean folder
                    for name in (child.METRICS_FILE, child.RESULT_FILE, child.PREDICTIONS_FILE):
                        (run_dir / name).unlink(missing_ok=True)
                run_dir.mkdir(parents=True, exist_ok=True)
                session.exec(delete(MetricPoint).where(MetricPoint.run_id == run.id))
                folders.append(run_dir)
            job_file = folders[0] / "job.json"
            job = {
                "runs": [{"run_id": r.id, "seed": r.seed, "run_dir": str(d), "streams": r.streams}
                         for r, d in zip(runs, folders)],
                "config": arm.config, "trainer": entry.trainer, "deterministic": entry.deterministic,
                "device": slot.device, "worker_pid": os.getpid(), "timeout": timeout,
                "threads": getattr(self.executor, "threads_per_slot", lambda: None)(),
            }
            host_gpus = getattr(self.executor, "host_gpus", None)  # known here only when runs run on this host
            if host_gpus is not None:
                job["gpus"] = host_gpus()
            job_file.write_text(json.dumps(job, indent=1, sort_keys=True), encoding="utf-8")
            log_path = folders[0] / "log.txt"  # a batch shares one log
            pid, start = self.executor.submit(
                Job(run_ids=[r.id for r in runs], job_file=job_file, run_dir=folders[0], log_path=log_path,
                    env=determinism_env(entry.deterministic, (runs[0].streams or {}).get("global", runs[0].seed)), timeout=timeout, cwd=cwd),
                slot,
            )
            commit = head_commit(cwd) if cwd else None
            for run, run_dir in zip(runs, folders):
                run.pid, run.pid_start_time = pid, start
                run.run_dir, run.log_path, run.git_commit = str(run_dir), str(log_path), commit
                session.add(run)
                self.streams[run.id] = PointStream(run_dir / child.METRICS_FILE)
                self.run_dirs[run.id] = run_dir
                self.log_paths[run.id] = log_path
                self.entry_of[run.id] = entry.id
            session.commit()
        seeds = ", ".join(str(r.seed) for r in runs)
        log(f"run{'s' if len(runs) > 1 else ''} {', '.join(map(str, run_ids))} started: {entry.slug}/{arm.name} "
            f"seed{'s' if len(runs) > 1 else ''} {seeds} on {slot.device}"
            + ("" if slot.gpu is None else f":{slot.gpu}") + f" (pid {pid})")

    # ---- while running ---------------------------------------------------------------------

    def _ingest(self) -> None:
        write_chunks(self.store, [(run_id, read_chunk(stream)) for run_id, stream in self.streams.items()])

    def _heartbeat(self) -> None:
        now = utcnow()
        with self.store.begin_write() as conn:
            conn.execute(update(Worker).where(Worker.id == self.worker_id).values(heartbeat_at=now))
            active = self.executor.active_run_ids()
            if active:
                conn.execute(update(Run).where(col(Run.id).in_(active)).values(heartbeat_at=now))

    def _honour_cancels(self) -> None:
        active = self.executor.active_run_ids()
        if not active:
            return
        with self.store.engine.connect() as conn:
            wanted = conn.execute(
                select(Run.id).where(col(Run.id).in_(active), Run.cancel_requested == True)  # noqa: E712
            ).scalars().all()
        for run_id in wanted:
            self.executor.kill(run_id, "cancelled")

    # ---- ending ----------------------------------------------------------------------------

    def _finish(self, ended: Ended) -> None:
        for run_id in ended.run_ids:
            self._finish_run(run_id, ended, ended.killed.get(run_id))

    def _finish_run(self, run_id: int, ended: Ended, killed: str | None) -> None:
        run_dir = self.run_dirs.pop(run_id)
        stream = self.streams.pop(run_id)
        entry_id = self.entry_of.pop(run_id)
        write_chunks(self.store, [(run_id, read_chunk(stream))])
        result = read_result(run_dir)
        fields: dict[str, Any] = {"exit_code": ended.exit_code, "ended_at": utcnow(), "cancel_requested": False,
                                  "wall_time_s": ended.wall_time_s}
        log_tail = tail(self.log_paths.pop(run_id))
        if result is not None:  # the run finished (even if a cancel, timeout or stop came just after): keep it
            fields.update({k: v for k, v in result_fields(result).items() if v is not None or k == "error_tail"})
            with self.store.session() as session:
                metric = session.get(Hypothesis, entry_id).metric
            fields.update(require_metric(fields, metric, log_tail))
        elif killed == "cancelled":
            fields.update(status="cancelled", error_tail="cancelled while running")
        elif killed == "timeout":
            fields.update(status="failed", error_tail=f"timed out after {ended.wall_time_s:.1f} s; log tail:\n{log_tail}")
        elif killed in ("worker stopping", "batch stopped"):
            reason = f"worker stopped by {self.stopping}" if killed == "worker stopping" else "another run of its batch was cancelled"
            fields.update(status="queued", attempt=Run.attempt + 1, started_at=None, ended_at=None, pid=None,
                          pid_start_time=None, worker_id=None, batch_id=None, batch_size=None,
                          error_tail=f"interrupted: {reason}")
        else:
            fields.update(status="crashed", error_tail=f"process ended with exit code {ended.exit_code} without a result; log tail:\n{log_tail}")
        self._settle(run_id, entry_id, fields)

    def _settle(self, run_id: int, entry_id: int, fields: dict[str, Any], *, only_if: Any = None) -> bool:
        """Write how a run ended (if ``only_if``, a further condition on the row, still holds) and
        conclude and judge its entry when no run of it is active any more. True if written."""
        with self.store.begin_write() as conn:
            where = [Run.id == run_id] + ([only_if] if only_if is not None else [])
            if conn.execute(update(Run).where(*where).values(**fields)).rowcount == 0:
                return False
            link_finished_runs(conn, [run_id])  # a finished attempt joins its entry's chain in this transaction
            busy = conn.execute(
                select(Run.id).join(Arm, Arm.id == Run.arm_id)
                .where(Arm.hypothesis_id == entry_id, col(Run.status).in_(ACTIVE)).limit(1)
            ).first()
            if busy is None:
                conn.execute(update(Hypothesis).where(Hypothesis.id == entry_id, Hypothesis.status == "running")
                             .values(status="concluded", updated_at=utcnow()))
        code = fields.get("exit_code")
        log(f"run {run_id} {fields.get('status', 'ended')}" + (f" (exit {code})" if code else ""))
        if busy is None:
            self._cache_verdict(entry_id)
            self._conclude_audits(entry_id)
        return True

    def _conclude_audits(self, entry_id: int) -> None:
        """When an entry's last run ends, its audits whose runs all ended conclude (seeds revealed)."""
        from logbook.entries.audit import conclude_ended_audits

        try:
            concluded = conclude_ended_audits(self.store, entry_id)
        except Exception as exc:  # noqa: BLE001 (an audit that cannot conclude now is concluded by `audit --status`)
            log(f"entry {entry_id}: audits not concluded ({exc!r})")
            return
        for audit_id in concluded:
            log(f"audit {audit_id} of entry {entry_id} concluded")

    def _cache_verdict(self, entry_id: int) -> None:
        """When an entry's last run ends, judge it, so the logbook list shows a current verdict."""
        from logbook.entries.verdicts import entry_verdict

        try:
            verdict = entry_verdict(self.store, str(entry_id), cache=True)["verdict"]
        except Exception as exc:  # noqa: BLE001 (a verdict that cannot be computed must not stop the worker)
            log(f"entry {entry_id}: verdict not cached ({exc!r})")
            return
        log(f"entry {entry_id}: all runs ended, verdict {verdict}")


def start_worker(store: Store, *, once: bool, idle_exit_s: float | None, slots_per_gpu: int, cpu_slots: int | None,
                 log_path: str | None = None, poll_s: float = 0.2, batch: int = 1,
                 grace_s: float = DEFAULT_GRACE_S) -> int:
    """Run a worker in this process until it is told to stop, idles out, or (``once``) drains the queue."""
    from logbook.engine.executor import detect_gpus, make_slots
    from logbook.engine.launcher import make_executor

    cpus = cpu_slots if cpu_slots is not None else max(1, (os.cpu_count() or 2) // 2)
    slots = make_slots(detect_gpus(), slots_per_gpu, cpus)
    loop = WorkerLoop(store, make_executor(slots, runs_dir(store.path)), once=once, idle_exit_s=idle_exit_s, log_path=log_path,
                      poll_s=poll_s, batch=batch, grace_s=grace_s)
    sys.stdout.flush()
    return loop.run()

