"""Running an entry's seeds on a Slurm cluster through submitit.

The worker stays the only writer of the database; it runs on the login node (or any machine
with the Slurm client) and:

- claims every queued Slurm run at once and sends each entry's runs out as ONE job array (one
  ``sbatch``), ``--array=0-N%K`` with K = ``max_running``; a batch of seeds trained together is
  one array task. Each task runs the same child process as the local executor (see
  ``slurm_task.py``); results come back through the run folders, so the logbook folder must be
  on a file system the nodes see;
- records the job id and array index on each run before anything else can happen to it, and
  polls job states with ONE ``sacct`` call for all its jobs every ``poll_s`` seconds;
- settles each run exactly once (the row update is guarded by its status and job id), requeues
  runs that Slurm lost (TIMEOUT, PREEMPTED, NODE_FAIL, BOOT_FAIL) up to ``max_requeues`` times,
  and leaves FAILED runs failed, with their log tail;
- cancels with ``scancel``; on stop it leaves its jobs running, and the next Slurm worker
  re-attaches to them from the job ids in the database (``submitit.SlurmJob(folder, job_id)``
  finds their Slurm logs).

One file (over 400 lines) because the Slurm executor and the Slurm worker share the job bookkeeping (array submission, sacct states, re-attachment); what runs on a node is slurm_task.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlmodel import col

from logbook.db.engine import NETWORK_FILESYSTEMS, Store, filesystem_type
from logbook.db.models import Arm, Hypothesis, MetricPoint, Run, Worker, utcnow
from logbook.engine import child
from logbook.engine.executor import Ended, Executor, Job, Slot
from logbook.engine.procinfo import is_alive
from logbook.engine.slurm_task import SLURM_FILE, run_task
from logbook.engine.ingest import insert_chunk, read_whole
from logbook.engine.outcomes import (
    LOG_TAIL_CHARS, log, read_result, require_metric, result_fields, tail,
)
from logbook.engine.worker import WorkerLoop
from logbook.errors import InputError
from logbook.db.paths import run_folder, runs_dir
from logbook.entries.provenance import head_commit
from logbook.entries.seeding import determinism_env
from logbook.entries.slurmconfig import time_minutes

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY",
                      "BOOT_FAIL", "DEADLINE", "REVOKED"})
REQUEUE_ON = frozenset({"TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL"})
SUBMITTING = "submitting:"  # slurm_job_id while sbatch runs: "submitting:<job name token>"
RESULT_GRACE_S = 15.0  # how long a COMPLETED task's result.json may take to appear (shared FS caches)


# ---- sacct ---------------------------------------------------------------------------------

def expand_job_id(job_id: str) -> list[str]:
    """sacct's "123_[0-3,7%2]" (pending array tasks, collapsed) as ["123_0", ..., "123_7"]."""
    match = re.fullmatch(r"(\d+)_\[([^\]]*)\]", job_id)
    if not match:
        return [job_id]
    base, spec = match.group(1), match.group(2).split("%")[0]
    keys = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        keys += [f"{base}_{i}" for i in range(int(low), int(high or low) + 1)]
    return keys


def parse_sacct(text: str) -> dict[str, dict[str, Any]]:
    """``sacct -X -n -P -o JobID,State,NodeList,ExitCode`` output as {task key: state, node, exit code}."""
    states: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 4 or not parts[0]:
            continue
        job_id, state, nodes, exit_code = parts[:4]
        code, _, signal_number = exit_code.partition(":")
        info = {"state": state.split()[0] if state else "UNKNOWN",  # "CANCELLED by 0"
                "node": None if nodes in ("", "None assigned") else nodes,
                "exit_code": int(code) if code.isdigit() else None,
                "signal": int(signal_number) if signal_number.isdigit() else None}
        for key in expand_job_id(job_id):
            states[key] = info
    return states


def query_states(array_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The state of every task of these jobs, in one sacct call."""
    if not array_ids:
        return {}
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(sorted(set(array_ids))),
                          "-o", "JobID,State,NodeList,ExitCode"], capture_output=True, text=True, timeout=120, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"sacct failed: {out.stderr.strip()[:300]}")
    return parse_sacct(out.stdout)


def find_jobs_by_name(name: str) -> list[str]:
    """Job ids with this name: in the queue now (squeue, immediate) or in the accounting (sacct)."""
    queued = subprocess.run(["squeue", "-h", "-n", name, "-o", "%F"], capture_output=True, text=True, timeout=120,
                            check=False)
    accounted = subprocess.run(["sacct", "-X", "-n", "-P", "--name", name, "-o", "JobID", "-S", "now-7days"],
                               capture_output=True, text=True, timeout=120, check=False)
    return sorted({line.split("_")[0] for line in (queued.stdout + "\n" + accounted.stdout).split() if line.strip()})


def scancel(*keys: str) -> None:
    subprocess.run(["scancel", *keys], capture_output=True, timeout=120, check=False)


# ---- configuration at `logbook run` ---------------------------------------------------------

def check_cluster(store: Store, options: dict[str, Any]) -> None:
    """Fail up front, with what to do, when runs could not go to Slurm from here."""
    if shutil.which("sbatch") is None or shutil.which("sacct") is None:
        raise InputError("--executor slurm: sbatch/sacct not found on PATH; run on a Slurm login node "
                         "(the Slurm client commands must work here)")
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise InputError("--executor slurm: submitit is not installed; install the slurm extra "
                         "(pip install 'negative-results-logbook[slurm]')") from None
    folder = runs_dir(store.path)
    folder.mkdir(parents=True, exist_ok=True)
    problem = shared_folder_problem(folder, count_nodes(options.get("partition")), filesystem_type(folder),
                                    bool(options.get("shared_fs")))
    if problem:
        raise InputError(problem)


def count_nodes(partition: str | None) -> int:
    argv = ["sinfo", "-h", "-o", "%D"] + (["-p", partition] if partition else [])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0:
        raise InputError(f"--partition: sinfo could not list {partition or 'the default partition'}: {out.stderr.strip()[:200]}")
    counts = [int(x) for x in out.stdout.split() if x.isdigit()]
    if partition and not counts:
        raise InputError(f"--partition: expected a partition of this cluster, got {partition!r} (see `sinfo`)")
    return sum(counts)


def shared_folder_problem(folder: Path, nodes: int, fs_type: str | None, declared_shared: bool) -> str | None:
    """Why the run folders would be invisible to the compute nodes, or None when they are fine.

    One node (the test cluster, a workstation running Slurm) sees any local folder. On several
    nodes the folder must be on a network file system; /tmp, /var/tmp and /dev/shm never are.
    """
    if declared_shared or nodes <= 1:
        return None
    resolved = folder.resolve()
    local_only = any(resolved.is_relative_to(p) for p in (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")))
    if not local_only and fs_type in NETWORK_FILESYSTEMS:
        return None
    what = "under a node-local folder" if local_only else f"on a {fs_type or 'unknown'} file system"
    return (f"--db: the logbook's run folders ({resolved}) are {what}, which the {nodes} nodes of this cluster "
            f"cannot see; put the logbook on a shared file system (NFS, Lustre, GPFS, ...) with --db, or set "
            f"shared_fs: true in the slurm block if this folder is shared after all")


# ---- the executor ---------------------------------------------------------------------------

class ClusterSlot(Slot):
    """The one pseudo-slot a Slurm worker registers: capacity is the cluster's business."""

    @property
    def device(self) -> str:
        return "slurm"


@dataclass
class SlurmEnded(Ended):
    key: str = ""
    state: str = "UNKNOWN"
    node: str | None = None
    signal: int | None = None


@dataclass
class _Task:
    key: str  # "<array job id>_<index>"
    run_ids: list[int]
    run_dirs: list[Path]
    state: str = "PENDING"
    node: str | None = None
    since: float = field(default_factory=time.monotonic)
    completed_at: float | None = None
    killed: dict[int, str] = field(default_factory=dict)


class SlurmExecutor(Executor):
    def __init__(self, folder: Path, poll_s: float = 5.0):
        self.folder = folder  # submitit's folder: pickles and the Slurm stdout/stderr of each task
        self.poll_s = poll_s
        self.slots = [ClusterSlot(0, None)]
        self.tasks: dict[str, _Task] = {}
        self.task_of: dict[int, str] = {}
        self.changes: dict[int, tuple[str, str | None]] = {}  # run id -> (state, node) not yet written
        self.last_poll = 0.0
        self.sacct_calls = 0

    def free_slots(self) -> list[Slot]:
        return []

    def submit(self, job: Job, slot: Slot) -> tuple[int, float | None]:
        raise NotImplementedError("Slurm jobs go out as arrays: use submit_array")

    def submit_array(self, jobs: list[Job], options: dict[str, Any], name: str) -> list[str]:
        """Submit these jobs as one array (one sbatch); returns each job's task key."""
        import submitit

        self.folder.mkdir(parents=True, exist_ok=True)
        executor = submitit.SlurmExecutor(folder=str(self.folder), max_num_timeout=0)
        extra: dict[str, Any] = {}
        for option in options.get("sbatch") or []:
            key, eq, value = option[2:].partition("=")
            extra[key] = value if eq else True
        # submitit asks Slurm for SIGUSR2 before the time limit and then ends the task itself, which
        # would turn a TIMEOUT into FAILED: ask for SIGURG instead, which every process ignores.
        extra.setdefault("signal", "URG@1")
        params: dict[str, Any] = {
            "job_name": name, "time": time_minutes(options.get("time", 60)),
            "cpus_per_task": options.get("cpus_per_task", 1), "array_parallelism": options.get("max_running", 64),
            "additional_parameters": extra,
        }
        for key in ("partition", "account", "qos", "constraint", "mem"):
            if options.get(key):
                params[key] = options[key]
        if options.get("gpus_per_task"):
            params["gpus_per_task"] = options["gpus_per_task"]
        executor.update_parameters(**params)
        with executor.batch():
            submitted = [executor.submit(run_task, str(j.job_file), str(j.log_path), j.env,
                                         str(j.cwd) if j.cwd else None) for j in jobs]
        keys = [str(s.job_id) for s in submitted]
        for key, job in zip(keys, jobs):
            self.track(key, job.run_ids, [Path(d) for d in job.env.get("LOGBOOK_RUN_DIRS", "").split(os.pathsep) if d]
                       or [job.run_dir])
        return keys

    def track(self, key: str, run_ids: list[int], run_dirs: list[Path], state: str = "PENDING") -> None:
        self.tasks[key] = _Task(key, list(run_ids), list(run_dirs), state=state)
        self.task_of.update({run_id: key for run_id in run_ids})

    def kill(self, run_id: int, reason: str) -> None:
        task = self.tasks.get(self.task_of.get(run_id, ""))
        if task is None:
            return
        first = not task.killed
        if task.killed.get(run_id) in (None, "batch stopped"):
            task.killed[run_id] = reason
        for other in task.run_ids:
            task.killed.setdefault(other, "batch stopped")
        if first:
            scancel(task.key)
            self.last_poll = 0.0  # look again soon

    def poll(self) -> list[Ended]:
        now = time.monotonic()
        if not self.tasks or now - self.last_poll < self.poll_s:
            return []
        self.last_poll = now
        self.sacct_calls += 1
        try:
            states = query_states([key.split("_")[0] for key in self.tasks])
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            log(f"slurm: {exc}; trying again")
            return []
        ended: list[Ended] = []
        for key, task in list(self.tasks.items()):
            info = states.get(key)
            if info is None:
                continue  # not in the accounting yet (just submitted): still pending
            state, node = info["state"], info["node"]
            if (state, node) != (task.state, task.node):
                task.state, task.node = state, node or task.node
                self.changes.update({run_id: (task.state, task.node) for run_id in task.run_ids})
            if state not in TERMINAL:
                continue
            if state == "COMPLETED" and not all((d / child.RESULT_FILE).exists() for d in task.run_dirs):
                task.completed_at = task.completed_at or now
                if now - task.completed_at < RESULT_GRACE_S:
                    continue  # a shared file system may show the file a little later
            del self.tasks[key]
            for run_id in task.run_ids:
                self.task_of.pop(run_id, None)
            ended.append(SlurmEnded(list(task.run_ids), info["exit_code"], now - task.since, dict(task.killed),
                                    key=key, state=state, node=task.node, signal=info["signal"]))
        return ended

    def active_run_ids(self) -> list[int]:
        return list(self.task_of)

    def slurm_log_tail(self, key: str) -> str:
        """The tail of the task's Slurm stderr (submitit's log), where srun and Slurm write."""
        try:
            import submitit

            paths = submitit.SlurmJob(folder=str(self.folder), job_id=key).paths
            return tail(paths.stderr, LOG_TAIL_CHARS // 2)
        except Exception:  # noqa: BLE001 (a missing log must not stop settling the run)
            return ""


# ---- the worker -----------------------------------------------------------------------------

@dataclass
class SlurmWorkerLoop(WorkerLoop):
    executor_name: str = "slurm"
    poll_s: float = 1.0
    tracked: dict[int, tuple[Path, Path, int]] = field(default_factory=dict)  # run id -> run dir, log, entry id

    @property
    def slurm(self) -> SlurmExecutor:
        assert isinstance(self.executor, SlurmExecutor)
        return self.executor

    def _register(self) -> None:
        super()._register()
        self._reattach()

    def _shutdown(self) -> None:
        """Leave the jobs running on the cluster; the next Slurm worker re-attaches to them."""
        self._ingest()
        left = self.executor.active_run_ids()
        with self.store.session(write=True) as session:
            worker = session.get(Worker, self.worker_id)
            worker.status, worker.stopped_at, worker.heartbeat_at = "stopped", utcnow(), utcnow()
            session.add(worker)
            session.commit()
        log(f"worker {self.worker_id} stopped" + (f" by {self.stopping}" if self.stopping else "")
            + (f"; {len(left)} runs stay on Slurm for the next worker" if left else ""))

    # ---- re-attaching ----------------------------------------------------------------------

    def _reattach(self) -> None:
        """Adopt the Slurm runs whose worker is gone: track recorded jobs, and for runs whose
        sbatch may or may not have gone through, cancel whatever went out and queue them again."""
        with self.store.session() as session:
            workers = session.execute(select(Worker.id, Worker.pid, Worker.pid_start_time, Worker.host)
                                   .where(Worker.status == "running", Worker.id != self.worker_id)).all()
            live = {w.id for w in workers if is_alive(w.pid, w.pid_start_time, w.host) is not False}
            rows = session.execute(
                select(Run.id, Run.slurm_job_id, Run.slurm_state, Run.node, Run.run_dir, Run.log_path, Arm.hypothesis_id)
                .join(Arm, Arm.id == Run.arm_id)
                .where(Run.executor == "slurm", Run.status == "running", col(Run.worker_id).not_in(live) | col(Run.worker_id).is_(None))
            ).all()
        if not rows:
            return
        by_key: dict[str, list] = {}
        for row in rows:
            by_key.setdefault(row.slurm_job_id or "", []).append(row)
        unsure = [key for key in by_key if not key or key.startswith(SUBMITTING)]
        for key in unsure:
            for job_id in find_jobs_by_name("logbook-" + key[len(SUBMITTING):]) if key else []:
                scancel(job_id)
        with self.store.begin_write() as conn:
            ids = [row.id for row in rows]
            conn.execute(update(Run).where(col(Run.id).in_(ids)).values(worker_id=self.worker_id))
            unsure_ids = [row.id for key in unsure for row in by_key[key]]
            if unsure_ids:
                conn.execute(update(Run).where(col(Run.id).in_(unsure_ids)).values(
                    status="queued", slurm_job_id=None, slurm_state=None, started_at=None,
                    error_tail="interrupted: its worker stopped while submitting; submitted again"))
        for key, group in by_key.items():
            if key in unsure:
                continue
            self.slurm.track(key, [r.id for r in group], [Path(r.run_dir) for r in group], state=group[0].slurm_state or "PENDING")
            for r in group:
                self.tracked[r.id] = (Path(r.run_dir), Path(r.log_path), r.hypothesis_id)
        log(f"re-attached to {len(by_key) - len(unsure)} Slurm tasks ({len(rows)} runs)"
            + (f"; queued again {sum(len(by_key[k]) for k in unsure)} runs whose submission was interrupted" if unsure else ""))

    # ---- submitting ------------------------------------------------------------------------

    def _start_runs(self) -> None:
        if not self._any_queued():
            return
        token = uuid.uuid4().hex[:12]
        now = utcnow()
        with self.store.begin_write() as conn:
            rows = conn.execute(
                select(Run.id, Run.arm_id, Run.seed, Run.workdir, Run.executor_options, Arm.hypothesis_id)
                .join(Arm, Arm.id == Run.arm_id)
                .where(Run.status == "queued", Run.executor == "slurm").order_by(Run.queued_at, Run.id)
            ).all()
            if not rows:
                return
            conn.execute(update(Run).where(col(Run.id).in_([r.id for r in rows]), Run.status == "queued").values(
                status="running", worker_id=self.worker_id, heartbeat_at=now, started_at=None, host=None, node=None,
                cancel_requested=False, slurm_job_id=SUBMITTING + token, slurm_state="SUBMITTING", batch_id=None,
                batch_size=None))
        groups: dict[tuple, list] = {}
        for row in rows:  # one array per entry and set of options
            groups.setdefault((row.hypothesis_id, json.dumps(row.executor_options or {}, sort_keys=True)), []).append(row)
        for (entry_id, options_json), group in groups.items():
            self._submit_entry(entry_id, json.loads(options_json), group, token)

    def _tasks_of(self, group: list, trainer: dict[str, Any]) -> list[list]:
        """Runs per array task: one each, or up to ``batch`` seeds of one arm where the trainer can."""
        if self.batch <= 1 or not self._can_batch(trainer):
            return [[row] for row in group]
        tasks: list[list] = []
        by_arm: dict[tuple, list] = {}
        for row in group:
            by_arm.setdefault((row.arm_id, row.workdir), []).append(row)
        for rows in by_arm.values():
            tasks += [rows[i:i + self.batch] for i in range(0, len(rows), self.batch)]
        return tasks

    def _submit_entry(self, entry_id: int, options: dict[str, Any], group: list, token: str) -> None:
        with self.store.session() as session:
            entry = session.get(Hypothesis, entry_id)
            arms = {arm.id: arm for arm in session.execute(select(Arm).where(Arm.hypothesis_id == entry_id)).scalars()}
            slug, trainer, deterministic, repo_root = entry.slug, entry.trainer, entry.deterministic, entry.repo_root
        device = "cuda" if options.get("gpus_per_task") else "cpu"
        jobs, per_run = [], {}
        for task_rows in self._tasks_of(group, trainer):
            folders = []
            for row in task_rows:
                run_dir = run_folder(self.store.path, slug, arms[row.arm_id].name, row.seed, row.id)
                run_dir.mkdir(parents=True, exist_ok=True)
                folders.append(run_dir)
            where = task_rows[0].workdir or repo_root
            cwd = Path(where) if where and Path(where).is_dir() else None
            job_file = folders[0] / "job.json"
            arm = arms[task_rows[0].arm_id]
            spec = {"runs": [{"run_id": r.id, "seed": r.seed, "run_dir": str(d)} for r, d in zip(task_rows, folders)],
                    "config": arm.config, "trainer": trainer, "deterministic": deterministic, "device": device,
                    "worker_pid": 0, "timeout": trainer.get("timeout"), "threads": options.get("cpus_per_task", 1)}
            job_file.write_text(json.dumps(spec, indent=1, sort_keys=True), encoding="utf-8")
            log_path = folders[0] / "log.txt"
            env = {**determinism_env(deterministic, task_rows[0].seed),
                   "LOGBOOK_RUN_DIRS": os.pathsep.join(str(d) for d in folders)}
            jobs.append(Job(run_ids=[r.id for r in task_rows], job_file=job_file, run_dir=folders[0], log_path=log_path,
                            env=env, timeout=trainer.get("timeout"), cwd=cwd))
            commit = head_commit(cwd) if cwd else None
            for r, d in zip(task_rows, folders):
                per_run[r.id] = (d, log_path, commit, len(task_rows))
        ids = list(per_run)
        try:
            keys = self.slurm.submit_array(jobs, options, name=f"logbook-{token}")
        except Exception as exc:  # noqa: BLE001 (sbatch refused: the runs fail with its message, the worker goes on)
            message = f"sbatch refused the job array: {exc}"[-LOG_TAIL_CHARS:]
            log(f"{slug}: {message}")
            for run_id in ids:
                self._settle(run_id, entry_id, {"status": "failed", "error_tail": message, "ended_at": utcnow(),
                                                "slurm_job_id": None, "slurm_state": None})
            return
        with self.store.begin_write() as conn:
            for key, job in zip(keys, jobs):
                batch_id = key if len(job.run_ids) > 1 else None
                for run_id in job.run_ids:
                    run_dir, log_path, commit, size = per_run[run_id]
                    conn.execute(update(Run).where(Run.id == run_id).values(
                        slurm_job_id=key, slurm_state="PENDING", run_dir=str(run_dir), log_path=str(log_path),
                        git_commit=commit, device=device, batch_id=batch_id, batch_size=size if batch_id else None))
                    self.tracked[run_id] = (run_dir, log_path, entry_id)
        array = keys[0].split("_")[0]
        log(f"{slug}: {len(ids)} runs submitted as Slurm job array {array} ({len(keys)} tasks, "
            f"at most {options.get('max_running', 64)} running at once)")

    # ---- while running ---------------------------------------------------------------------

    def _ingest(self) -> None:
        """Write the states and nodes sacct reported since the last call, in one transaction."""
        changes, self.slurm.changes = self.slurm.changes, {}
        if not changes:
            return
        now = utcnow()
        with self.store.begin_write() as conn:
            for run_id, (state, node) in changes.items():
                values: dict[str, Any] = {"slurm_state": state, "node": node, "host": node}
                if state == "RUNNING":
                    values["started_at"] = now
                conn.execute(update(Run).where(Run.id == run_id, Run.status == "running").values(**values))

    # ---- ending ----------------------------------------------------------------------------

    def _finish_run(self, run_id: int, ended: Ended, killed: str | None) -> None:
        assert isinstance(ended, SlurmEnded)
        run_dir, log_path, entry_id = self.tracked.pop(run_id)
        result = read_result(run_dir)
        with self.store.session() as session:
            run = session.get(Run, run_id)
            requeues, options, cancel_asked = run.slurm_requeues, run.executor_options or {}, run.cancel_requested
            metric = session.get(Hypothesis, entry_id).metric
        where = f"slurm job {ended.key} ended {ended.state}" + (f" on {ended.node}" if ended.node else "")
        fields: dict[str, Any] = {"exit_code": ended.exit_code, "ended_at": utcnow(), "cancel_requested": False,
                                  "slurm_state": ended.state, "node": ended.node, "host": ended.node,
                                  "wall_time_s": ended.wall_time_s}
        placement = _read_json(run_dir / SLURM_FILE)
        if result is not None:  # it finished, whatever came after: keep the result
            fields.update({k: v for k, v in result_fields(result).items() if v is not None or k == "error_tail"})
            fields["environment"] = {**(result.get("environment") or {}), "slurm": placement}
            fields.update(require_metric(fields, metric, tail(log_path)))
        elif killed == "cancelled" or (ended.state == "CANCELLED" and cancel_asked):
            fields.update(status="cancelled", error_tail=f"cancelled while on Slurm ({where})")
        elif killed == "batch stopped":
            fields.update(status="queued", attempt=Run.attempt + 1, slurm_job_id=None, started_at=None, ended_at=None,
                          error_tail=f"interrupted: another run of its batch was cancelled ({where})")
        elif ended.state in REQUEUE_ON and requeues < int(options.get("max_requeues", 2)):
            fields.update(status="queued", attempt=Run.attempt + 1, slurm_requeues=requeues + 1, slurm_job_id=None,
                          started_at=None, ended_at=None, queued_at=utcnow(),
                          error_tail=f"{where}; requeued automatically ({requeues + 1} of {options.get('max_requeues', 2)})")
        else:
            why = (f"; not requeued: {requeues} automatic requeues used" if ended.state in REQUEUE_ON else "")
            fields.update(status="failed", error_tail=(
                f"{where} without a result (exit {ended.exit_code}"
                + (f", signal {ended.signal}" if ended.signal else "") + f"){why}; log tail:\n"
                + tail(log_path) + self.slurm.slurm_log_tail(ended.key))[-LOG_TAIL_CHARS:])
            if placement:
                fields["environment"] = {"slurm": placement}
        if result is not None:
            self._load_points(run_id, run_dir)
        # exactly once: only while the run still waits on this task is it settled
        self._settle(run_id, entry_id, fields, only_if=and_(Run.status == "running", Run.slurm_job_id == ended.key))

    def _load_points(self, run_id: int, run_dir: Path) -> None:
        """The run's whole metric stream, written once when it ends (a requeued task restarts it)."""
        chunk = read_whole(run_dir / child.METRICS_FILE)
        with self.store.begin_write() as conn:
            conn.execute(delete(MetricPoint).where(MetricPoint.run_id == run_id))
            insert_chunk(conn, run_id, chunk)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def start_slurm_worker(store: Store, *, once: bool, idle_exit_s: float | None, log_path: str | None = None,
                       poll_s: float = 5.0, batch: int = 1) -> int:
    """Run a Slurm worker in this process (see ``start_worker`` for the local one)."""
    executor = SlurmExecutor(runs_dir(store.path).parent / "slurm", poll_s=poll_s)
    loop = SlurmWorkerLoop(store, executor, once=once, idle_exit_s=idle_exit_s, log_path=log_path, batch=batch,
                           poll_s=min(1.0, poll_s))
    return loop.run()
