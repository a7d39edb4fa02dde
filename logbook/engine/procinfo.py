"""Process identity: a pid alone can be reused, so a process is (host, pid, start time)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

HOST = socket.gethostname()


def process_start_time(pid: int) -> float | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    # The command name (field 2) may hold spaces or parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        if fields[0] == "Z":  # a zombie has exited; only its exit status is left
            return None
        return float(fields[19])  # field 22 of the whole line: starttime
    except (IndexError, ValueError):
        return None


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
