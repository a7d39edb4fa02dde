"""Process identity: a pid alone can be reused, so a process is (host, pid, start time)."""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

HOST = socket.gethostname()


def process_start_time(pid: int) -> float | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None if it is gone
    (a zombie has exited too: only its exit status is left)."""
    stat = read_stat(pid)
    return None if stat is None or stat.state == "Z" else stat.start_time


def is_alive(pid: int | None, start_time: float | None, host: str | None = HOST) -> bool | None:
    """Whether that exact process still runs; None when it is on another host and cannot be checked."""
    if pid is None:
        return False
    if host is not None and host != HOST:
        return None
    current = process_start_time(pid)
    if current is None:
        return False
    return start_time is None or current == start_time


def this_process() -> tuple[str, int, float | None]:
    pid = os.getpid()
    return HOST, pid, process_start_time(pid)


# ---- process groups -------------------------------------------------------------------------
# Every run's process starts a session of its own (``start_new_session=True``), so its pid is also
# its process group id, and everything it starts (a script, that script's children) stays in that
# group unless it calls setsid itself. These functions end a run's whole group, whichever launcher
# started it: any executor or launcher that starts a run as a group leader can call them.


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat this module needs."""

    pid: int
    state: str
    pgrp: int
    session: int
    start_time: float


def read_stat(pid: int) -> ProcStat | None:
    """/proc/PID/stat of one process (zombies included), or None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    # The command name (field 2) may hold spaces or parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:  # state, pgrp, session, and starttime (field 22 of the whole line)
        return ProcStat(pid, fields[0], int(fields[2]), int(fields[3]), float(fields[19]))
    except (IndexError, ValueError):
        return None


def group_members(pgid: int, *, zombies: bool = False) -> list[ProcStat]:
    """Processes whose process group is ``pgid`` (zombies only when asked: they hold no memory,
    no GPU and no file, and only their parent can remove them)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = read_stat(int(entry.name))
        if stat is not None and stat.pgrp == pgid and (zombies or stat.state != "Z"):
            members.append(stat)
    return members


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to every process of group ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def end_group(pgid: int, *, grace_s: float = 0.0, settle_s: float = 5.0, poll_s: float = 0.02) -> bool:
    """End process group ``pgid``: SIGTERM first when ``grace_s`` > 0 (a trainer may checkpoint),
    SIGKILL to whatever is left after it, then wait up to ``settle_s`` until no member runs.
    Returns True when none runs any more (zombies aside)."""
    if grace_s > 0 and signal_group(pgid, signal.SIGTERM):
        deadline = time.monotonic() + grace_s
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(poll_s)
    if not signal_group(pgid, signal.SIGKILL):
        return True  # no process of the group is left, not even a zombie: nothing to wait for
    deadline = time.monotonic() + settle_s
    while group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def group_is_the_runs(pid: int, start_time: float | None) -> bool:
    """Whether process group ``pid`` still belongs to the run whose leader was (pid, start_time).

    While any process of a group lives, Linux does not hand its number to a new process. So: a
    process with that pid (a zombie too) must be the leader itself (same start time); with no
    such process, the members left are the leader's (in its session, started after it)."""
    leader = read_stat(pid)
    if leader is not None:
        return start_time is None or leader.start_time == start_time
    return any(m.session == pid and (start_time is None or m.start_time >= start_time)
               for m in group_members(pid))


def end_run_group(pid: int | None, start_time: float | None, *, grace_s: float = 0.0) -> bool:
    """End what is left of a run's process group (orphan recovery: its worker is gone, its
    leader may be gone too, a grandchild may still hold the GPU). False when there was nothing of
    the run's left, or the pid now belongs to someone else."""
    if not pid or not group_is_the_runs(pid, start_time):
        return False
    end_group(pid, grace_s=grace_s)
    return True
