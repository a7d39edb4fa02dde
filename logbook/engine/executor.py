"""Executors: where a run's process runs. The worker submits jobs and collects their ends; it
stays the one process that writes the database, whatever the executor.

``LocalExecutor`` runs each job as a child process of the worker on one of this host's slots
(``slots_per_gpu`` per GPU, or CPU slots when there is no GPU), each with its own
``CUDA_VISIBLE_DEVICES`` and a bounded thread count. A distributed executor (Slurm through
submitit, say) implements the same four methods and reports ends the same way; results travel
through the run folder (``result.json``), which must then be on a shared file system.

A local job's process leads a process group of its own. When it ends, however it ends, the rest
of its group (a script it started, that script's children) is killed and gone before its slot is
offered again, so a GPU never holds a finished run's leftovers beside the next run. A worker that
stops asks jobs to end with SIGTERM and SIGKILLs them after a grace period (``stop_all``).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from logbook.engine.procinfo import end_group, process_start_time, signal_group


@dataclass(frozen=True)
class Slot:
    """One place a run can execute: a GPU index (as CUDA_VISIBLE_DEVICES names it) or the CPU."""

    index: int
    gpu: str | None  # None for a CPU slot

    @property
    def device(self) -> str:
        return "cuda" if self.gpu is not None else "cpu"

    def to_dict(self) -> dict:
        return {"slot": self.index, "gpu": self.gpu, "device": self.device}


@dataclass
class Job:
    """One process: one run, or a batch of runs of the same arm trained together."""

    run_ids: list[int]
    job_file: Path
    run_dir: Path
    log_path: Path
    env: dict[str, str]
    timeout: float | None = None
    cwd: Path | None = None


@dataclass
class Ended:
    """What the executor knows about a job that ended; each run's outcome is in its run folder."""

    run_ids: list[int]
    exit_code: int | None
    wall_time_s: float
    killed: dict[int, str] = field(default_factory=dict)  # run id -> why it was killed, for the runs that were


@dataclass
class _Active:
    job: Job
    slot: Slot
    process: subprocess.Popen
    started: float
    pid_start_time: float | None
    killed: dict[int, str] = field(default_factory=dict)
    log: object = field(default=None, repr=False)
    kill_at: float | None = None  # after SIGTERM: when to SIGKILL what is left
    exit_fd: int | None = None  # a pidfd: readable once the process has ended (``wait`` wakes on it)


def detect_gpus() -> list[str]:
    """GPU ids from CUDA_VISIBLE_DEVICES when set, else from nvidia-smi, else none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [x.strip() for x in visible.split(",") if x.strip()]
        return [] if not ids or ids[0].startswith("-") else ids  # "" or "-1" hide every GPU
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    lines = [line for line in out.stdout.splitlines() if line.startswith("GPU ")] if out.returncode == 0 else []
    return [str(i) for i in range(len(lines))]


def make_slots(gpus: list[str], slots_per_gpu: int, cpu_slots: int) -> list[Slot]:
    if gpus:
        return [Slot(i, gpu) for i, gpu in enumerate(g for g in gpus for _ in range(slots_per_gpu))]
    return [Slot(i, None) for i in range(cpu_slots)]


class Executor(ABC):
    """Runs jobs somewhere and tells the worker when each one ends."""

    slots: list[Slot]

    @abstractmethod
    def free_slots(self) -> list[Slot]: ...

    @abstractmethod
    def submit(self, job: Job, slot: Slot) -> tuple[int, float | None]:
        """Start a job; returns the pid and process start time that identify it."""

    @abstractmethod
    def kill(self, run_id: int, reason: str) -> None:
        """Stop the job running this run; ``poll`` reports the run killed for ``reason`` and the
        other runs of its batch killed for "batch stopped"."""

    @abstractmethod
    def poll(self) -> list[Ended]:
        """Jobs that ended since the last call, timeouts enforced."""

    @abstractmethod
    def active_run_ids(self) -> list[int]: ...

    def stop_all(self, reason: str, grace_s: float) -> None:
        """Ask every job to stop; ``poll`` reports their runs killed for ``reason``. Executors that
        can give a grace period (SIGTERM, then SIGKILL after ``grace_s``) override this."""
        for run_id in self.active_run_ids():
            self.kill(run_id, reason)

    def wait(self, timeout: float) -> None:
        """Idle between two polls; an executor that can tell when a job ends may return sooner."""
        time.sleep(timeout)

    def close(self) -> None:
        """Release what the executor holds (helper processes); called when the worker stops."""


class LocalExecutor(Executor):
    def __init__(self, slots: list[Slot]):
        self.slots = slots
        self.active: dict[int, _Active] = {}  # keyed by the job's first run id
        self.job_of: dict[int, int] = {}  # run id -> job key
        self._gpu_names: list[str] | None = None

    def host_gpus(self) -> list[str]:
        """This host's GPU names, asked once (nvidia-smi costs up to a second on a GPU host), for
        the runs' environment records: a run's process need not ask again."""
        if self._gpu_names is None:
            from logbook.entries.provenance import gpu_names

            self._gpu_names = gpu_names()
        return self._gpu_names

    def threads_per_slot(self) -> int:
        return max(1, (os.cpu_count() or 1) // max(1, len(self.slots)))

    def free_slots(self) -> list[Slot]:
        used = {a.slot.index for a in self.active.values()}
        return [s for s in self.slots if s.index not in used]

    def slot_env(self, slot: Slot) -> dict[str, str]:
        """The environment every process on this slot gets: its GPU and its share of the cores."""
        threads = str(self.threads_per_slot())
        return {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": slot.gpu if slot.gpu is not None else "",
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "PYTHONUNBUFFERED": "1",
        }

    def start_process(self, job: Job, slot: Slot, env: dict[str, str], log) -> subprocess.Popen:  # noqa: ANN001
        """Start the job's process (the launcher module overrides this with a pre-started one)."""
        return subprocess.Popen(
            [sys.executable, "-m", "logbook.engine.child", str(job.job_file)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=str(job.cwd) if job.cwd and job.cwd.is_dir() else None,
            start_new_session=True,  # its own process group: a timeout or cancel kills its children too
        )

    def submit(self, job: Job, slot: Slot) -> tuple[int, float | None]:
        env = {**self.slot_env(slot), **job.env}
        log = open(job.log_path, "ab")  # noqa: SIM115 (closed when the job ends)
        process = self.start_process(job, slot, env, log)
        started_at = process_start_time(process.pid)
        key = job.run_ids[0]
        self.active[key] = _Active(job, slot, process, time.monotonic(), started_at, log=log,
                                   exit_fd=_exit_fd(process))
        self.job_of.update({run_id: key for run_id in job.run_ids})
        return process.pid, started_at

    def _signal_group(self, active: _Active, sig: int) -> None:
        signal_group(active.process.pid, sig)

    def stop_all(self, reason: str, grace_s: float) -> None:
        """SIGTERM every job's group now (a trainer may checkpoint) and SIGKILL it ``grace_s``
        later from ``poll``; ``grace_s`` 0 kills at once. A second call can only shorten it."""
        now = time.monotonic()
        for active in self.active.values():
            for run_id in active.job.run_ids:
                active.killed.setdefault(run_id, reason)
            if active.kill_at is None:
                self._signal_group(active, signal.SIGTERM)
            kill_at = now + grace_s
            if active.kill_at is None or kill_at < active.kill_at:
                active.kill_at = kill_at

    def kill(self, run_id: int, reason: str) -> None:
        active = self.active.get(self.job_of.get(run_id, -1))
        if active is None:
            return
        first = not active.killed
        if active.killed.get(run_id) in (None, "batch stopped"):  # a run's own reason beats its batch's
            active.killed[run_id] = reason
        for other in active.job.run_ids:
            active.killed.setdefault(other, "batch stopped")
        if first:
            self._signal_group(active, signal.SIGKILL)

    def poll(self) -> list[Ended]:
        ended: list[Ended] = []
        now = time.monotonic()
        for key, active in list(self.active.items()):
            timeout = active.job.timeout
            if timeout and not active.killed and now - active.started > timeout:
                active.killed = {run_id: "timeout" for run_id in active.job.run_ids}
                self._signal_group(active, signal.SIGKILL)
            if active.kill_at is not None and now >= active.kill_at:
                self._signal_group(active, signal.SIGKILL)
                active.kill_at = float("inf")
            code = _ended(active.process)
            if code is None:
                continue
            # The leader has exited but is not reaped yet, so its pid (the group id) cannot be
            # reused: kill what is left of its group (a script's children that never wrote to
            # stdout, say) and wait until it is gone, then reap the leader and free the slot.
            end_group(active.process.pid)
            code = active.process.wait()
            active.log.close()
            if active.exit_fd is not None:
                os.close(active.exit_fd)
            del self.active[key]
            for run_id in active.job.run_ids:
                self.job_of.pop(run_id, None)
            ended.append(Ended(list(active.job.run_ids), code, now - active.started, dict(active.killed)))
        return ended

    def active_run_ids(self) -> list[int]:
        return list(self.job_of)

    def exit_fds(self) -> list[int]:
        """File descriptors that become readable when a job's process ends."""
        return [a.exit_fd for a in self.active.values() if a.exit_fd is not None]

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout``, waking as soon as a job's process ends (a worker that slept
        whole poll intervals would add up to one to every run)."""
        fds = self.exit_fds()
        if fds:
            select.select(fds, [], [], timeout)
        else:
            time.sleep(timeout)


def _exit_fd(process: object) -> int | None:
    """A pidfd for a process this worker started (Linux 5.3 and later), else None."""
    if not isinstance(process, subprocess.Popen) or not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(process.pid)
    except OSError:
        return None


def _ended(process: subprocess.Popen) -> int | None:
    """The exit code of a child that has ended, without reaping it (so its pid stays its own
    until ``wait``); None while it runs."""
    if process.returncode is not None:
        return process.returncode
    try:
        info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped elsewhere
        return process.poll()
    if info is None or info.si_pid == 0:
        return None
    if info.si_code == os.CLD_EXITED:
        return info.si_status
    return -info.si_status  # killed by a signal, as Popen reports it
