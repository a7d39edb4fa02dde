"""Shared by the reliability scenarios: a logbook run without privileges (so read-only files and
folders really are read-only, even when the tests run as root), digests, and process checks
through /proc."""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PR_CAPBSET_DROP = 24
LAST_CAPABILITY = 63


def _drop_capabilities() -> None:
    """In the child before exec: empty the capability bounding set, so root execs with no
    capabilities and file permissions bind it like any user (CAP_DAC_OVERRIDE is gone)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(LAST_CAPABILITY + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the kernel's last capability


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_folder() -> Path:
    """A fresh folder under /tmp that every user can enter (pytest's own tmp folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="logbook-rel-"))
    folder.chmod(0o755)
    return folder


def logbook_as_user(*args, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`logbook ARGS` in a subprocess, without root's capabilities when this runs as root."""
    extra = {"preexec_fn": _drop_capabilities} if os.geteuid() == 0 else {}
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(cwd), "NO_COLOR": "1"}
    env.pop("LOGBOOK_DB", None)
    return subprocess.run([sys.executable, "-m", "logbook", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env, **extra)


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"
