"""Whole-process wall time of the verbs people type most, on a 10,000-entry logbook (goal ≤ 300 ms).

Builds the large logbook of benchmarks/tui.py (10,000 entries, 200,000 runs; metric points only
when asked: neither verb reads them), then runs each command as a user would, a new
``python -m logbook`` process each time:
- cold-ish: the database file's pages dropped from the page cache first (``posix_fadvise``
  DONTNEED; the interpreter and libraries stay cached, as they are on a machine in use);
- warm: the same command again, median of ``--repeat``.
The floor is ``python -m logbook --version``: starting the interpreter and the CLI, no database.
The machine's load average is recorded with the table: this machine is shared.

Run: .venv/bin/python benchmarks/cli_speed.py [--entries 10000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _record import record  # noqa: E402
from tui import build  # noqa: E402

COMMANDS = {  # label -> arguments after `logbook --db DB`
    "`logbook --version` (floor: interpreter + CLI, no database)": ["--version"],
    "`logbook status`": ["status"],
    "`logbook list`": ["list"],
    "`logbook list --json`": ["list", "--json"],
}


def drop_cached(path: Path) -> None:
    """Ask the kernel to forget the file's cached pages (and its WAL's), so the next read goes to disk."""
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if name.exists():
            fd = os.open(name, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def timed(db: Path, args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs-per-arm", type=int, default=10)
    parser.add_argument("--points-per-run", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--name", default="cli_speed")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "big.db"
        built = build(db, args.entries, args.runs_per_arm, args.points_per_run)
        load_before = os.getloadavg()[0]
        for label, command in COMMANDS.items():
            timed(db, command)  # the interpreter's own files cached, bytecode written
            cold = []
            for _ in range(3):
                drop_cached(db)
                cold.append(timed(db, command)[0])
            warm = [timed(db, command)[0] for _ in range(args.repeat)]
            lines = len(timed(db, command)[1].splitlines())
            rows.append([label, f"{lines} lines out", f"median {statistics.median(warm) * 1000:.0f} ms warm",
                         f"cold-ish median {statistics.median(cold) * 1000:.0f} ms (3); warm min {min(warm) * 1000:.0f} ms,"
                         f" max {max(warm) * 1000:.0f} ms ({args.repeat})"])
        load_after = os.getloadavg()[0]
    record(args.name, f"CLI verbs on a {args.entries:,}-entry logbook (new process each)",
           ["command", "output", "result", "detail"], rows,
           [f"Logbook: {args.entries:,} entries, {built['runs']:,} runs, {built['points']:,} metric points"
            " (benchmarks/tui.py's builder). Goal: status and list ≤ 300 ms.",
            f"Load average (1 min) {load_before:.1f} before, {load_after:.1f} after, on "
            f"{os.cpu_count()} CPUs shared with other work: absolute times are inflated by that much contention.",
            "Command: .venv/bin/python benchmarks/cli_speed.py " + " ".join(sys.argv[1:])])


if __name__ == "__main__":
    main()
