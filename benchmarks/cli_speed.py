"""Whole-process wall time of the verbs people type most, on a 10,000-entry logbook (goal ≤ 300 ms).

Builds the large logbook of benchmarks/tui.py (10,000 entries, 200,000 runs; metric points only
when asked: neither verb reads them), then runs each command as a user would, a new
``python -m logbook`` process each time:
- cold-ish: the database file's pages dropped from the page cache first (``posix_fadvise``
  DONTNEED; the interpreter and libraries stay cached, as they are on a machine in use);
- warm: the same command again, median of ``--repeat``;
- with ``--old-src DIR``, the same commands with another checkout's code (old and new in one run).
The floor is ``python -m logbook --version``: starting the interpreter and the CLI, no database.
The machine's load average is recorded with the table: this machine is shared.

A ``--db`` file is never changed: each side reads its own copy, the new code's upgraded to this
checkout's schema (its indexes), the old code's left at the file's schema. The old code runs from
a copy of ``DIR/logbook`` that holds its migrations: its own where ``DIR/logbook/migrations``
exists, else this checkout's cut at the file's revision (an installed checkout's package would
otherwise find this checkout's newest migrations and upgrade its copy). The query plans of `status` (EXPLAIN QUERY PLAN) are recorded with the table.

Run: .venv/bin/python benchmarks/cli_speed.py [--entries 10000] [--repeat 5] [--db BUILT.db] [--old-src DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import sqlite3
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


def timed(db: Path, args: list[str], src: Path | None = None) -> tuple[float, float, str]:
    """One `python -m logbook --db DB ARGS` process: its wall time, its CPU time (user + system,
    which contention on a shared machine inflates far less than the wall time) and its stdout.
    ``src`` runs another checkout's ``logbook`` package (put first on the path) with this interpreter."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), *args], capture_output=True, text=True,
                         check=True, env=env, cwd=db.parent)  # not the checkout: its folder would come first on the path
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout


def measure(db: Path, command: list[str], repeat: int, src: Path | None) -> dict[str, float]:
    """Median wall and CPU time, warm (``repeat`` runs) and cold-ish (2 runs after dropping the file's pages)."""
    timed(db, command, src)  # the interpreter's own files cached, bytecode written
    cold = []
    for _ in range(2):
        drop_cached(db)
        cold.append(timed(db, command, src)[0])
    warm = [timed(db, command, src) for _ in range(repeat)]
    return {"wall": statistics.median(w for w, _, _ in warm), "cpu": statistics.median(c for _, c, _ in warm),
            "cold": statistics.median(cold), "lines": len(warm[-1][2].splitlines())}


def copy_db(source: Path, target: Path) -> Path:
    """A consistent copy of the logbook (its WAL included), through SQLite's backup; the source is only read."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return target


def revision(db: Path) -> str:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        con.close()


def old_package(src: Path, into: Path, upto: str) -> Path:
    """A folder holding a copy of ``src/logbook`` with migrations whose head is ``upto``: its own,
    or this checkout's without the revisions that come after ``upto``."""
    from logbook.db.engine import migrations_dir

    shutil.copytree(src / "logbook", into / "logbook", ignore=shutil.ignore_patterns("__pycache__"))
    target = into / "logbook" / "migrations"
    if target.is_dir():
        return into
    shutil.copytree(migrations_dir(), target, ignore=shutil.ignore_patterns("__pycache__"))
    line = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:["']([^"']+)["']|None)""", re.M)
    files, parent = {}, {}
    for path in (target / "versions").glob("*.py"):
        found = dict((name, value) for name, value in line.findall(path.read_text(encoding="utf-8")))
        if "revision" in found:
            files[found["revision"]], parent[found["revision"]] = path, found.get("down_revision") or None
    keep, at = set(), upto
    while at is not None:
        keep.add(at)
        at = parent[at]
    for revision_id, path in files.items():
        if revision_id not in keep:
            path.unlink()
    return into


def status_plans(db: Path) -> list[str]:
    """EXPLAIN QUERY PLAN of every statement behind `logbook status` (db/reads.py), on ``db``."""
    from logbook.db import reads

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    traced: list[str] = []
    con.set_trace_callback(traced.append)
    reads.status_report(con, db, alive=lambda *_: False)
    con.set_trace_callback(None)
    plans = [f"`{sql[:90]}{'…' if len(sql) > 90 else ''}`: " + "; ".join(row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql))
             for sql in traced]
    con.close()
    return plans


def cell(m: dict[str, float]) -> str:
    return f"{m['wall'] * 1000:.0f} ms wall, {m['cpu'] * 1000:.0f} ms CPU (cold-ish {m['cold'] * 1000:.0f} ms wall)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs-per-arm", type=int, default=10)
    parser.add_argument("--points-per-run", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", type=Path, help="Time this logbook (built by benchmarks/tui.py) instead of building one.")
    parser.add_argument("--old-src", type=Path,
                        help="A folder holding the old code's `logbook` package (e.g. `git archive main | tar -x -C DIR`),"
                             " timed on the same file beside this checkout's.")
    parser.add_argument("--name", default="cli_speed")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from logbook.db.engine import open_store
        from logbook.db.reads import SCHEMA_HEAD

        db = Path(tmp) / "new" / "big.db"
        db.parent.mkdir()
        built = None
        if args.db:
            copy_db(args.db, db)
        else:
            built = build(db, args.entries, args.runs_per_arm, args.points_per_run)
        old_db = copy_db(db, Path(tmp) / "old.db")  # the schema it came with
        old_revision = revision(old_db)
        old_src = old_package(args.old_src, Path(tmp) / "old-src", old_revision) if args.old_src else None
        open_store(db, mode="write").dispose()  # this checkout's schema (and indexes)
        load_before = os.getloadavg()[0]
        for label, command in COMMANDS.items():
            new = measure(db, command, args.repeat, None)
            row = [label, f"{new['lines']} lines", cell(new)]
            if args.old_src:
                old = measure(old_db, command, args.repeat, old_src)
                row += [f"{old['lines']} lines", cell(old), f"{old['cpu'] / new['cpu']:.1f}× CPU, {old['wall'] / new['wall']:.1f}× wall"]
            rows.append(row)
        load_after = os.getloadavg()[0]
        size = (f"{built['runs']:,} runs, {built['points']:,} metric points" if built
                else f"{_count(db, 'run'):,} runs, {_count(db, 'metric_point'):,} metric points")
        schemas = (f"Schema: new code on a copy upgraded to {revision(db)} (head {SCHEMA_HEAD}); old code on a copy at "
                   f"{old_revision} (after its runs: {revision(old_db)}).")
        plans = status_plans(db)
    header = ["command", "output (new)", "new: median of warm runs"]
    if args.old_src:
        header += ["output (old)", "old: median of warm runs", "old / new"]
    record(args.name, f"CLI verbs on a {args.entries:,}-entry logbook (a new process each)", header, rows,
           [f"Logbook: {args.entries:,} entries, {size} (benchmarks/tui.py's builder). Goal: status and list ≤ 300 ms.",
            f"Warm: median of {args.repeat} runs; cold-ish: median of 2 runs after dropping the database file's pages from"
            " the page cache. CPU: user + system time of the child process. Old: the code in --old-src"
            f" ({args.old_src}),"
            " run with the same interpreter and libraries on copies of the same file, in the same run.",
            f"Load average (1 min) {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} CPUs shared with"
            " other work: wall times are inflated by that contention; CPU times much less.",
            schemas,
            "Command: .venv/bin/python benchmarks/cli_speed.py " + " ".join(sys.argv[1:]),
            "", "Query plans of `logbook status` on the new copy:", "", *[f"- {plan}" for plan in plans]])


def _count(db: Path, table: str) -> int:
    import sqlite3

    with sqlite3.connect(db) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


if __name__ == "__main__":
    main()
