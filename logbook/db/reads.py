"""The SQL behind `logbook status` and `logbook list`, over a plain DB-API (``sqlite3``) connection.

One implementation for both ways in: the full path hands these functions the raw connection of
its SQLAlchemy store (``Store.connection()``), and the fast path of those two verbs opens the file
itself, read-only, with ``open_reader``, never importing SQLAlchemy or the table models (half a
second of a `logbook status` that should take a fraction of that over SSH).

``open_reader`` serves only a file whose schema is exactly ``SCHEMA_HEAD``; anything else (no file,
not SQLite, an older schema to upgrade, a newer one, a folder where SQLite needs an immutable open)
returns None and the caller takes the full path, which upgrades or refuses with its one-line
errors. Setting ``LOGBOOK_FULL_READ=1`` always takes the full path (to compare the two).

Imports nothing of the project but ``db.runstatus``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from logbook.db.runstatus import ACTIVE, COUNTED_ORIGINS, FINISHED, RETRYABLE

SCHEMA_HEAD = "0012"  # the newest migration; tests/test_reads.py checks it against migrations/
FULL_READ_ENV = "LOGBOOK_FULL_READ"
BUSY_TIMEOUT_MS = 30_000
SEED_HIDDEN = "hidden until the audit ends"
WITHDRAWN = "withdrawn"  # the amendment field that withdraws an entry (see db/queries.py)
ISO_SQL = "strftime('%Y-%m-%dT%H:%M:%SZ', {})"  # a stored UTC time as ISO 8601 with a Z, by SQLite


# ---- connections --------------------------------------------------------------------------------

def readonly_uri(db_path: Path, immutable: bool) -> str:
    return f"file:{urllib.parse.quote(str(db_path))}?mode=ro" + ("&immutable=1" if immutable else "")


def connect_readonly(db_path: Path, immutable: bool | None = None) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection and whether it had to be ``immutable``: in a read-only folder a WAL
    database cannot get its shared-memory file, and only an immutable open reads it then. Only
    there: an immutable open ignores locks and the WAL, so on a file someone may be writing (a
    busy or locked first try in a writable folder) it would read a torn database."""
    if immutable is None:
        tries = (False,) if os.access(db_path.parent, os.W_OK) else (False, True)
    else:
        tries = (immutable,)
    for attempt in tries:
        conn = sqlite3.connect(readonly_uri(db_path, attempt), uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                               check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn, attempt
        except sqlite3.OperationalError:
            conn.close()
            if attempt == tries[-1]:
                raise
    raise AssertionError("unreachable")


@dataclass
class Reader:
    """A logbook opened read-only with plain ``sqlite3``: what `status` and `list` need of a store
    (``path``, ``read_only``, ``notes``, ``connection()``, ``dispose()``)."""

    path: Path
    conn: sqlite3.Connection
    notes: list[str] = field(default_factory=list)
    read_only: bool = True

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one read transaction, so every query sees the same snapshot."""
        self.conn.execute("BEGIN")
        try:
            yield self.conn
        finally:
            if self.conn.in_transaction:  # SQLite may have rolled back already (an I/O error)
                self.conn.execute("ROLLBACK")

    def dispose(self) -> None:
        self.conn.close()


def open_reader(db_path: Path) -> Reader | None:
    """The logbook at ``db_path`` opened read-only without SQLAlchemy, or None when the full path
    must handle it (see the module's docstring): nothing is created or changed either way."""
    if os.environ.get(FULL_READ_ENV) or not db_path.is_file():
        return None
    try:
        conn, _ = connect_readonly(db_path, immutable=False)
    except sqlite3.Error:
        return None
    try:
        conn.isolation_level = None  # transactions are explicit (Reader.connection)
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if row is not None and row[0] == SCHEMA_HEAD:
            conn.execute("PRAGMA query_only = ON")
            return Reader(path=db_path, conn=conn)
    except sqlite3.Error:
        pass
    conn.close()
    return None


# ---- small helpers ------------------------------------------------------------------------------

def iso_text(stored: str | None) -> str | None:
    """A time as stored ('YYYY-MM-DD HH:MM:SS[.ffffff]', UTC) as ISO 8601 to the second with a Z:
    what ``db.queries.iso`` makes of the same value read as a datetime (truncated, not rounded)."""
    if stored is None:
        return None
    if len(stored) == 10:  # a date alone is midnight
        return stored + "T00:00:00Z"
    return f"{stored[:10]}T{stored[11:19]}Z"


def json_value(stored: str | None) -> Any:
    """A JSON column's value (None for SQL NULL), as SQLAlchemy's JSON type reads it."""
    return None if stored is None else json.loads(stored)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _in(column: str, ids: Sequence[int] | None) -> tuple[str, list[Any]]:
    """``AND column IN (?, ...)`` and its parameters, or nothing when ``ids`` is None (every entry)."""
    return ("", []) if ids is None else (f" AND {column} IN ({_marks(ids)})", list(ids))


def _quoted(values: Sequence[str]) -> str:
    """Fixed state words (``runstatus``) as an SQL list; never user input."""
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


# The seed's latest attempt: no other run retries it.
LATEST_ATTEMPT = "run.id NOT IN (SELECT retry.retry_of FROM run AS retry WHERE retry.retry_of IS NOT NULL)"


# ---- entries and runs ---------------------------------------------------------------------------

def withdrawals(conn: sqlite3.Connection, entry_ids: Sequence[int] | None = None) -> dict[int, dict[str, Any]]:
    """Every withdrawn entry's id with when and why (``{"at", "reason"}``, the first withdrawal)."""
    where, params = _in("hypothesis_id", entry_ids)
    found: dict[int, dict[str, Any]] = {}
    for entry_id, at, reason in conn.execute(
            f"SELECT hypothesis_id, created_at, reason FROM amendment WHERE field = ?{where} ORDER BY id",
            [WITHDRAWN, *params]):
        found.setdefault(entry_id, {"at": iso_text(at), "reason": reason})
    return found


def run_counts(conn: sqlite3.Connection, entry_ids: Sequence[int] | None = None) -> dict[int, Counter]:
    """Run counts by status for each entry id, one per seed and arm (its latest attempt)."""
    where, params = _in("arm.hypothesis_id", entry_ids)
    counts: dict[int, Counter] = {}
    for entry_id, status, n in conn.execute(
            "SELECT arm.hypothesis_id, run.status, count(*) FROM arm JOIN run ON run.arm_id = arm.id "
            f"WHERE {LATEST_ATTEMPT}{where} GROUP BY arm.hypothesis_id, run.status", params):
        counts.setdefault(entry_id, Counter())[status] = n
    return counts


def entry_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM hypothesis").fetchone()[0]


def newest_ids(conn: sqlite3.Connection, count: int, withdrawn: str = "no", *, oldest: bool = False) -> tuple[list[int], int]:
    """The ids of the ``count`` newest entries shown under ``withdrawn`` (``no``, ``yes``, ``any``),
    oldest first, and how many entries are shown in all; ``oldest``: the ``count`` oldest instead."""
    hidden = sorted(withdrawals(conn))
    total = entry_count(conn)
    if withdrawn == "yes":
        return (hidden[:count] if oldest else hidden[-count:]), len(hidden)
    where = "" if withdrawn == "any" else f" WHERE id NOT IN ({_marks(hidden)})"
    shown = [row[0] for row in conn.execute(f"SELECT id FROM hypothesis{where} ORDER BY id {'ASC' if oldest else 'DESC'} LIMIT ?",
                                            [*([] if withdrawn == "any" else hidden), count])]
    return sorted(shown), total if withdrawn == "any" else total - len(hidden)


# The list's columns of an entry, in the order ``entries.listing`` unpacks them: times as ISO text
# and the trainer as one word (its name, ``command`` for a command, ``none`` for imported results).
ENTRY_COLUMNS = (
    "id", "slug", "title", "metric", "goal", "seeds_per_arm", "verdict", "verdict_detail", "status", "tags",
    ISO_SQL.format("updated_at"), "retrospective", "statement", "notes",
    "coalesce(json_extract(trainer, '$.name'), "
    "CASE WHEN json_extract(trainer, '$.command') IS NOT NULL THEN 'command' ELSE 'none' END)",
    ISO_SQL.format("registered_at"), "registration_hash",
)


def entry_list(conn: sqlite3.Connection, ids: Sequence[int] | None = None) -> tuple[list[tuple], dict[int, list[str]],
                                                                                   dict[int, tuple[int, int, str | None]]]:
    """What the list's rows are made of, for every entry or those in ``ids``: the entries (tuples
    of ``ENTRY_COLUMNS``, JSON decoded), each entry's arm names in order, and per entry with runs
    (counted finished seeds of their latest attempt, runs queued or running, the last end)."""
    where, params = _in("id", ids)
    entries = [
        (*row[:7], json_value(row[7]), row[8], json_value(row[9]), *row[10:])
        for row in conn.execute(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM hypothesis WHERE 1{where} ORDER BY id", params)
    ]
    where, params = _in("hypothesis_id", ids)
    arm_names: dict[int, list[str]] = {}
    for entry_id, name in conn.execute(f"SELECT hypothesis_id, name FROM arm WHERE 1{where} ORDER BY hypothesis_id, position",
                                       params):
        arm_names.setdefault(entry_id, []).append(name)
    # One pass over the runs, grouped by entry in the order of ix_arm_hypothesis_id and joined through ix_run_arm_id.
    counted = (f"run.status IN ({_quoted(FINISHED)}) AND run.seed_origin IN ({_quoted(COUNTED_ORIGINS)}) "
               f"AND {LATEST_ATTEMPT}")
    where, params = _in("arm.hypothesis_id", ids)
    per_entry = {
        entry_id: (finished or 0, active or 0, last)
        for entry_id, finished, active, last in conn.execute(
            f"SELECT arm.hypothesis_id, sum(CASE WHEN {counted} THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN run.status IN ({_quoted(ACTIVE)}) THEN 1 ELSE 0 END), {ISO_SQL.format('max(run.ended_at)')} "
            f"FROM arm JOIN run ON run.arm_id = arm.id WHERE 1{where} GROUP BY arm.hypothesis_id", params)
    }
    return entries, arm_names, per_entry


# ---- the queue's status -------------------------------------------------------------------------

# Nearly every run of a large logbook ends up succeeded: counted as all runs (the b-tree's own count)
# less the others, found by two range scans of ix_run_status_queued_at around it.
BULK_STATUS = "succeeded"


def status_counts(conn: sqlite3.Connection) -> Counter:
    """Runs by status, one per seed and arm (its latest attempt), counted by the database.

    Only a run that ended without a usable value (``RETRYABLE``) is ever retried, by a run of the
    same arm (``requeue``): those are looked up through ``ix_run_arm_id``; every other status is
    counted whole, off the indexes, so no query reads the table or steps through the succeeded runs."""
    total = conn.execute("SELECT count(*) FROM run").fetchone()[0]
    others = conn.execute(
        "SELECT status, count(*) FROM run WHERE status < ? GROUP BY status UNION ALL "
        "SELECT status, count(*) FROM run WHERE status > ? GROUP BY status", (BULK_STATUS, BULK_STATUS)).fetchall()
    counts = Counter({status: n for status, n in others if status not in RETRYABLE})
    bulk = total - sum(n for _, n in others)
    if bulk:
        counts[BULK_STATUS] = bulk
    retryable = _quoted(RETRYABLE)
    latest = (f"SELECT status, count(*) FROM run WHERE status IN ({retryable}) AND NOT EXISTS "
              "(SELECT 1 FROM run AS retry WHERE retry.arm_id = run.arm_id AND retry.retry_of = run.id) GROUP BY status")
    counts.update({status: n for status, n in conn.execute(latest)})
    return counts


def open_audit_ids(conn: sqlite3.Connection) -> set[int]:
    """Audits still under way: their fresh seeds stay private until they end."""
    return {row[0] for row in conn.execute("SELECT id FROM audit WHERE status != 'concluded'")}


RUN_COLUMNS = (
    "run.id", "hypothesis.slug", "hypothesis.id", "arm.name", "run.seed", "run.audit_id", "run.seed_origin", "run.status",
    "run.attempt", "run.retry_of", "run.worker_id", "run.device", "run.gpu", "run.pid", "run.started_at", "run.ended_at",
    "run.wall_time_s", "run.exit_code", "run.error_tail", "run.final_metrics", "run.log_path", "run.executor",
    "run.slurm_job_id", "run.slurm_state", "run.node", "run.slurm_requeues",
)
RUNS_SQL = (f"SELECT {', '.join(RUN_COLUMNS)} FROM run JOIN arm ON arm.id = run.arm_id "
            "JOIN hypothesis ON hypothesis.id = arm.hypothesis_id")
# Newest end first, runs that ended at the same time in queue order: ix_run_ended_at_desc_id, no sort.
NEWEST = "run.ended_at DESC, run.id"
RECENT_IDS_SQL = f"SELECT run.id FROM run WHERE run.status NOT IN ({_quoted(ACTIVE)}) ORDER BY {NEWEST} LIMIT ?"


def status_runs(conn: sqlite3.Connection, entry_id: int | None = None, recent: int = 50) -> list[tuple]:
    """Rows of ``RUN_COLUMNS``: every run of one entry, or the active runs and the ``recent``
    newest finished ones (oldest first)."""
    if entry_id is not None:
        return conn.execute(f"{RUNS_SQL} WHERE hypothesis.id = ? ORDER BY run.id", (entry_id,)).fetchall()
    active = conn.execute(f"{RUNS_SQL} WHERE run.status IN ({_quoted(ACTIVE)}) ORDER BY run.id").fetchall()
    # the recent ids from the run table alone (through the index), then only those joined to their arm and entry
    done = conn.execute(f"{RUNS_SQL} WHERE run.id IN ({RECENT_IDS_SQL}) ORDER BY {NEWEST}", (recent,)).fetchall()
    return active + done[::-1]


def status_report(conn: sqlite3.Connection, db_path: Path | str, entry_id: int | None = None, recent: int = 50, *,
                  alive: Callable[[int | None, float | None, str | None], bool | None]) -> dict[str, Any]:
    """What `logbook status` shows: the newest workers with their slots (``alive`` tells whether a
    worker's process still runs: ``engine.procinfo.is_alive``), run counts, and runs (see
    ``status_runs``). Seeds of audits still under way are hidden."""
    workers = conn.execute("SELECT id, pid, host, slots, status, pid_start_time, started_at, heartbeat_at, log_path "
                           "FROM worker ORDER BY id DESC LIMIT 20").fetchall()
    rows = status_runs(conn, entry_id, recent)
    counts = status_counts(conn)
    open_audits = open_audit_ids(conn)
    return {
        "db": str(db_path),
        "workers": [
            {
                "id": w_id, "pid": pid, "host": host, "slots": json_value(slots), "status": status,
                "alive": alive(pid, start_time, host) if status == "running" else False,
                "started_at": iso_text(started), "heartbeat_at": iso_text(heartbeat), "log_path": log_path,
            }
            for w_id, pid, host, slots, status, start_time, started, heartbeat, log_path in workers
        ],
        "counts": dict(sorted(counts.items())),
        "runs": [_run_dict(row, open_audits) for row in rows],
    }


def _run_dict(row: tuple, open_audits: set[int]) -> dict[str, Any]:
    (run_id, slug, entry_id, arm, seed, audit_id, origin, status, attempt, retry_of, worker, device, gpu, pid, started,
     ended, wall, exit_code, error_tail, final_metrics, log_path, executor, job, slurm_state, node, requeues) = row
    shown = audit_id is None or audit_id not in open_audits  # a seed of an audit under way stays private
    return {
        "id": run_id, "entry": slug, "entry_id": entry_id, "arm": arm,
        **({"seed": seed} if shown else {"seed": None, "seed_hidden": SEED_HIDDEN}),
        "origin": origin, "status": status, "attempt": attempt, "retry_of": retry_of, "worker": worker,
        "device": device, "gpu": gpu, "pid": pid, "started_at": iso_text(started), "ended_at": iso_text(ended),
        "wall_time_s": wall, "exit_code": exit_code,
        "error": (error_tail or "").strip().splitlines()[-1] if error_tail else None,
        "final_metrics": json_value(final_metrics),
        "log_path": log_path if shown else None,  # its folder is named by the seed
        "executor": executor, "slurm_job_id": job, "slurm_state": slurm_state, "node": node, "slurm_requeues": requeues,
    }
