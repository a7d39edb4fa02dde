"""`logbook status` and `logbook list` read a current logbook with plain sqlite3 (db/reads.py): in a
real process they never import SQLAlchemy, SQLModel, the table models, GitPython, Textual or torch,
and they print byte for byte what the full path prints; any other file (an older or a newer schema,
no file) takes the full path and is handled as before."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from logbook.db import reads
from logbook.engine.procinfo import HOST, process_start_time
from tests.conftest import add_runs, make_entry

HEAVY = ("sqlalchemy", "sqlmodel", "git", "textual", "torch", "alembic")

# Runs the real CLI, then says on the last line of stderr which heavy modules the process imported.
WRAPPER = """
import atexit, sys
heavy = {heavy!r}
def report():
    found = sorted(m for m in sys.modules if m.split(".")[0] in heavy or m == "logbook.db.models")
    sys.stderr.write("imported: " + " ".join(found) + "\\n")
atexit.register(report)
from logbook.cli import main
main(sys.argv[1:])
"""


def logbook(db: Path | None, *args: str, full: bool = False, cwd: Path | None = None) -> tuple[int, str, str, list[str]]:
    """``python -m logbook --db DB ARGS`` (through the wrapper): exit code, stdout, stderr without
    the report, and the heavy modules imported. ``full`` forces the full (SQLAlchemy) path; without
    ``db``, the logbook is found from ``cwd`` as a user's would be."""
    env = {**os.environ, "NO_COLOR": "1"}
    for name in (reads.FULL_READ_ENV, "LOGBOOK_DB"):
        env.pop(name, None)
    if full:
        env[reads.FULL_READ_ENV] = "1"
    where = ["--db", str(db)] if db else []
    out = subprocess.run([sys.executable, "-c", WRAPPER.format(heavy=HEAVY), *where, *args],
                         capture_output=True, text=True, timeout=120, env=env, cwd=cwd or db.parent)
    *err, report = out.stderr.splitlines()
    assert report.startswith("imported:"), out.stderr
    return out.returncode, out.stdout, "\n".join(err), report.split()[1:]


@pytest.fixture
def varied(cli, tmp_path, db_path, fixed_registration):
    """A logbook with every kind of row the two verbs show: finished runs of every state (ending a
    hair before a whole second), queued retries of the failed ones, a withdrawn entry, a live and a
    dead worker, and an audit under way whose seed must stay hidden."""
    make_entry(cli, tmp_path, title="Gate on the adding task", tags="[rnn]")
    add_runs(db_path, "baseline", [0.51, None, 0.50, None, 0.52, None],
             ["succeeded", "failed", "succeeded", "crashed", "succeeded", "diverged"], at=("2026-05-04 09:59:58", "2026-05-04 10:00:00.999900"))
    add_runs(db_path, "gated", [0.50, 0.49, 0.51, 0.48, 0.50, 0.47], at=("2026-05-04 10:00:01", "2026-05-04 10:00:02.5"))
    assert cli("requeue", "1", "--no-worker", "--yes").code == 0  # three queued retries (retry_of set)
    make_entry(cli, tmp_path, title="Cosine schedule by mistake", tags="[optim]")
    assert cli("withdraw", "2", "--reason", "a mistake").code == 0
    make_entry(cli, tmp_path, title="Warmup length", tags="[optim, schedule]")
    con = sqlite3.connect(db_path)
    slots = json.dumps([{"slot": 0, "device": "cpu", "gpu": None}, {"slot": 1, "device": "cuda", "gpu": "0"}])
    for pid, start in ((os.getpid(), process_start_time(os.getpid())), (2 ** 22 + 7, 1.0)):  # this process, and one long gone
        con.execute("INSERT INTO worker (host, pid, pid_start_time, slots, status, started_at, heartbeat_at) VALUES "
                    "(?, ?, ?, ?, 'running', '2026-05-04 10:00:00', '2026-05-04 10:01:00.5')", (HOST, pid, start, slots))
    audit = con.execute("INSERT INTO audit (hypothesis_id, created_at, n_seeds, commitment, status) VALUES "
                        "(3, '2026-05-04 11:00:00', 1, 'c0ffee', 'running')").lastrowid
    arm = con.execute("SELECT id FROM arm WHERE hypothesis_id = 3 ORDER BY id").fetchone()[0]
    con.execute("INSERT INTO run (arm_id, audit_id, seed, seed_origin, status, attempt, queued_at, log_path, cancel_requested)"
                " VALUES (?, ?, 424242, 'audit', 'queued', 1, '2026-05-04 11:00:00', '/runs/424242/log', 0)", (arm, audit))
    con.commit()
    con.close()
    return db_path


VERBS = [("status",), ("status", "--json"), ("list",), ("list", "--json"), ("list", "--all", "--sort", "title"),
         ("list", "--search", "optim"), ("list", "--verdict", "withdrawn", "--json"), ("list", "--limit", "1")]


@pytest.mark.parametrize("args", VERBS, ids=" ".join)
def test_status_and_list_read_without_sqlalchemy_and_print_what_the_full_path_prints(varied, args):
    code, out, err, imported = logbook(varied, *args)
    full_code, full_out, full_err, full_imported = logbook(varied, *args, full=True)
    assert imported == []
    assert "sqlalchemy" in full_imported  # the switch takes the full path
    assert (code, out, err) == (full_code, full_out, full_err) == (0, full_out, "")
    assert out.strip()


def test_status_shows_the_rows_the_database_holds(varied):
    info = json.loads(logbook(varied, "status", "--json")[1])
    con = sqlite3.connect(varied)
    statuses = con.execute("SELECT id, status, retry_of FROM run").fetchall()
    con.close()
    retried = {retry_of for _, _, retry_of in statuses if retry_of}
    assert info["counts"] == dict(sorted(Counter(s for i, s, _ in statuses if i not in retried).items()))
    assert info["counts"] == {"queued": 4, "succeeded": 9}
    assert [w["alive"] for w in info["workers"]] == [False, True]
    assert [w["heartbeat_at"] for w in info["workers"]] == ["2026-05-04T10:01:00Z"] * 2
    audit_run = next(r for r in info["runs"] if r["origin"] == "audit")
    assert (audit_run["seed"], audit_run["log_path"]) == (None, None)
    failed = next(r for r in info["runs"] if r["status"] == "failed")
    assert failed["ended_at"] == "2026-05-04T10:00:00Z"  # truncated to the second, as everywhere else
    text = logbook(varied, "status")[1]
    assert "workers: 1 running" in text and f"pid {os.getpid()} on {HOST}, slots cpu, cuda:0" in text
    assert "runs: 4 queued, 9 succeeded" in text and "424242" not in text


def test_the_logbook_at_the_git_root_is_found_without_gitpython(varied, tmp_path):
    root = tmp_path / "repo"
    (root / "src" / "deep").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".logbook").mkdir()
    shutil.copy(varied, root / ".logbook" / "logbook.db")
    code, out, _, imported = logbook(None, "list", cwd=root / "src" / "deep")
    assert (code, out, imported) == (0, logbook(varied, "list")[1], [])


def test_an_older_schema_takes_the_full_path_and_is_upgraded_as_before(varied, tmp_path):
    fast = logbook(varied, "status")
    old = tmp_path / "old" / "logbook.db"
    old.parent.mkdir()
    shutil.copy(varied, old)
    con = sqlite3.connect(old)  # what migration 0011's downgrade does
    con.execute("DROP INDEX ix_run_ended_at_desc_id")
    con.execute("DROP INDEX ix_run_retry_of")
    con.execute("UPDATE alembic_version SET version_num = '0008'")
    con.commit()
    con.close()
    code, out, err, imported = logbook(old, "status")
    assert "sqlalchemy" in imported
    assert (code, out, err) == fast[:3]
    con = sqlite3.connect(old)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == (reads.SCHEMA_HEAD,)
    assert {"ix_run_ended_at_desc_id", "ix_run_retry_of"} <= {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    con.close()
    assert logbook(old, "list")[3] == []  # upgraded: the next read is the fast one


def test_a_newer_schema_or_no_file_is_refused_as_before(varied, tmp_path):
    newer = tmp_path / "newer.db"
    shutil.copy(varied, newer)
    con = sqlite3.connect(newer)
    con.execute("UPDATE alembic_version SET version_num = '0999'")
    con.commit()
    con.close()
    code, out, err, imported = logbook(newer, "list")
    assert (code, out) == (2, "") and "schema revision 0999 is newer than this logbook knows" in err
    assert "sqlalchemy" in imported
    missing = tmp_path / "nowhere" / "logbook.db"
    (tmp_path / "nowhere").mkdir()
    code, out, err, _ = logbook(missing, "status", "--json")
    assert (code, out) == (2, "") and json.loads(err)["error"].startswith(f"no logbook at {missing}")
    assert list((tmp_path / "nowhere").iterdir()) == []  # nothing created


def test_schema_head_is_alembics_head():
    from logbook.db.engine import head_revision

    assert reads.SCHEMA_HEAD == head_revision()


def test_status_queries_read_through_indexes(varied):
    """No query behind `logbook status` reads the whole run table, groups it in a temporary
    b-tree, or sorts it to find the recent runs (EXPLAIN QUERY PLAN); only the active runs and the
    recent ones (at most 50) are sorted after they are found."""
    con = sqlite3.connect(varied)
    traced: list[str] = []
    con.set_trace_callback(traced.append)  # each statement as run, its parameters filled in
    reads.status_report(con, varied, alive=lambda *_: False)
    con.set_trace_callback(None)
    plans = {sql: [row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql)] for sql in traced}
    assert [row[3] for row in con.execute("EXPLAIN QUERY PLAN " + reads.RECENT_IDS_SQL, (50,))] == [
        "SCAN run USING INDEX ix_run_ended_at_desc_id"]
    con.close()
    assert len(plans) >= 6
    for sql, plan in plans.items():
        assert not any(step.startswith("SCAN run") and "INDEX" not in step for step in plan), (sql, plan)
        assert not any("TEMP B-TREE FOR GROUP BY" in step for step in plan), (sql, plan)
