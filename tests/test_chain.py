"""Tamper evidence and attempts, on real logbooks: the hash chain, its triggers, `logbook verify`
(entries and exported writeups), TAMPERED in every view, refusal to run a tampered entry, and
requeue adding attempts that the verdict counts per seed.

The tampering matrix enumerates the schema (sqlite_master, PRAGMA table_info), so a table or
column added later is covered without editing this file."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest

from logbook.entries.chain import MUTABLE, OUTSIDE_THE_RECORD, TRIGGER_ONLY
from tests.conftest import add_runs, make_entry

FINISHED_STATUSES = ("succeeded", "failed", "diverged", "crashed", "cancelled")


@pytest.fixture
def sealed(cli, tmp_path, db_path):
    """A registered entry with an amendment, finished runs with metric points, and a concluded audit."""
    make_entry(cli, tmp_path)
    assert cli("amend", "1", "--field", "notes", "--value", "pilot done", "--reason", "context").code == 0
    add_runs(db_path, "baseline", [0.51, 0.50, 0.52, 0.49, 0.50, 0.51])
    add_runs(db_path, "gated", [0.50, 0.49, None, 0.48, 0.50, float("nan")], ["succeeded"] * 2 + ["crashed"] + ["succeeded"] * 3)
    con = sqlite3.connect(db_path)
    con.execute("INSERT INTO audit (hypothesis_id, created_at, n_seeds, commitment, salt, seeds, status, outcome, concluded_at)"
                " VALUES (1, '2026-05-05', 3, 'c0ffee', 'salt', '[1, 2, 3]', 'concluded', 'replicated', '2026-05-06')")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    assert cli("verify", "--json").code == 0
    return db_path


def _changed(value):
    """A different value of the same kind (valid JSON stays valid JSON)."""
    if value is None:
        return "x"
    if isinstance(value, (int, float)):
        return value + 1
    try:
        parsed = json.loads(value)
    except ValueError:
        return value + "x"
    if isinstance(parsed, (dict, list, int, float)) and not isinstance(parsed, bool):
        return json.dumps({"tampered": parsed})
    return value + "x"


def _schema(con) -> dict[str, list[str]]:
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {t: [c[1] for c in con.execute(f"PRAGMA table_info({t})")] for t in tables}


def _target_row(con, table: str) -> int | None:
    """A row of ``table`` that belongs to the sealed entry: for runs and points, a finished run's."""
    if table == "run":
        return con.execute(f"SELECT rowid FROM run WHERE status IN {FINISHED_STATUSES} ORDER BY id LIMIT 1").fetchone()[0]
    if table == "metric_point":
        return con.execute("SELECT metric_point.rowid FROM metric_point JOIN run ON run.id = metric_point.run_id"
                           f" WHERE run.status IN {FINISHED_STATUSES} ORDER BY metric_point.id LIMIT 1").fetchone()[0]
    row = con.execute(f"SELECT rowid FROM {table} ORDER BY rowid LIMIT 1").fetchone()
    return None if row is None else row[0]


def _outcome(cli, original: Path, work: Path, statement: str, params: tuple, drop_triggers: bool) -> str:
    """Apply one raw statement to a copy of the logbook: 'refused' by a trigger or constraint,
    'detected' by `logbook verify`, or 'undetected'."""
    shutil.copy(original, work)
    con = sqlite3.connect(work)
    if drop_triggers:
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            con.execute(f"DROP TRIGGER {name}")
    try:
        cur = con.execute(statement, params)
        assert cur.rowcount == 1, statement
        con.commit()
    except sqlite3.IntegrityError:
        return "refused"
    finally:
        con.close()
    result = cli("--db", work, "verify", "--json")
    assert result.code in (0, 3), result.err
    return "detected" if result.code == 3 else "undetected"


@pytest.mark.parametrize("drop_triggers", [False, True], ids=["with-triggers", "triggers-dropped"])
def test_tampering_matrix_every_column_is_refused_or_detected(cli, sealed, tmp_path, drop_triggers):
    con = sqlite3.connect(sealed)
    schema = _schema(con)
    targets = {table: _target_row(con, table) for table in schema}
    originals = {}
    for table, rowid in targets.items():
        if rowid is not None:
            con.row_factory = sqlite3.Row
            originals[table] = dict(con.execute(f"SELECT * FROM {table} WHERE rowid = ?", (rowid,)).fetchone())
            con.row_factory = None
    con.close()
    # every table is either part of the record (it has rows here) or named, with a reason, as outside it
    assert {t for t, rowid in targets.items() if rowid is None} | {"alembic_version"} == set(OUTSIDE_THE_RECORD)
    work = tmp_path / "work.db"
    outcomes: dict[tuple[str, str], str] = {}
    for table, row in originals.items():
        if table in OUTSIDE_THE_RECORD:
            continue
        for column in schema[table]:
            outcomes[(table, column)] = _outcome(
                cli, sealed, work, f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (_changed(row[column]), targets[table]),
                drop_triggers)
        outcomes[(table, "DELETE")] = _outcome(cli, sealed, work, f"DELETE FROM {table} WHERE rowid = ?", (targets[table],),
                                               drop_triggers)
    undetected = {key for key, outcome in outcomes.items() if outcome == "undetected"}
    trigger_only = {key for key in outcomes if key[0] in TRIGGER_ONLY}
    if drop_triggers:
        # without triggers, verify alone catches everything but the named mutable columns and the trigger-only tables
        assert undetected == set(MUTABLE) | trigger_only
    else:
        assert undetected == set(MUTABLE)
        assert all(outcomes[(t, "DELETE")] == "refused" for t in originals if t not in OUTSIDE_THE_RECORD), {
            t: outcomes[(t, "DELETE")] for t in originals if t not in OUTSIDE_THE_RECORD and outcomes[(t, "DELETE")] != "refused"}
        assert all(outcomes[key] == "refused" for key in trigger_only if key[0] == "audit")
    assert {t for t, _ in MUTABLE} <= set(originals)  # the exemption list names real columns
    assert all(column in schema[table] for table, column in MUTABLE)


def test_the_probes_findings_are_named_and_block_running(cli, sealed, tmp_path):
    """The issue's raw edits, with the triggers dropped where they would refuse them."""
    con = sqlite3.connect(sealed)
    con.execute("DROP TRIGGER hypothesis_fixed_columns")
    con.execute("DROP TRIGGER run_finished_immutable")
    con.execute("UPDATE hypothesis SET min_effect = 0.5, alpha = 0.4, goal = 'maximize', trainer = '{\"command\": \"touch /tmp/x\"}'")
    con.execute("UPDATE run SET final_metrics = '{\"val_loss\": 0.1}' WHERE id = 1")
    con.commit()
    con.close()
    result = cli("verify")
    assert result.code == 3
    for field in ("min_effect", "alpha", "goal", "trainer"):
        assert f"hypothesis 1: {field}: changed" in result.out
    assert "run 1: final_metrics: changed" in result.out
    assert "TAMPERED" in result.err
    report = json.loads(cli("verify", "1", "--json").out)
    assert report["intact"] is False and report["entries"][0]["integrity"] == "TAMPERED"
    assert {(f["row"], f["field"]) for f in report["entries"][0]["findings"]} >= {("hypothesis 1", "min_effect"), ("run 1", "final_metrics")}

    shown = cli("show", "1")
    assert "TAMPERED" in shown.out and "verified" not in shown.out
    verdict = json.loads(cli("verdict", "1", "--json").out)
    assert verdict["integrity"] == "TAMPERED" and verdict["integrity_findings"]
    assert "TAMPERED" in cli("verdict", "1").out
    for args in (("run", "1", "--no-worker", "--yes"), ("requeue", "1", "--no-worker", "--yes")):
        refused = cli(*args)
        assert refused.code == 3 and "TAMPERED" in refused.err, args
    con = sqlite3.connect(sealed)
    assert con.execute("SELECT count(*) FROM run WHERE status = 'queued'").fetchone()[0] == 0
    con.close()


def test_an_intact_logbook_verifies_and_inserted_rows_are_found(cli, sealed):
    result = cli("verify")
    assert result.code == 0 and "verified" in result.out
    con = sqlite3.connect(sealed)
    arm_id = con.execute("SELECT id FROM arm WHERE name = 'gated'").fetchone()[0]
    con.execute("INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, final_metrics, cancel_requested)"
                " VALUES (?, 4242, 'planned', 'succeeded', 1, '2026-05-04', '{\"val_loss\": 0.1}', 0)", (arm_id,))
    con.execute("INSERT INTO amendment (hypothesis_id, field, old_value, new_value, reason, created_at)"
                " VALUES (1, 'alpha', '0.05', '0.3', 'quiet', '2026-05-07')")
    con.commit()
    con.close()
    out = cli("verify", "--json")
    assert out.code == 3
    problems = {(f["row"], f["problem"]) for f in json.loads(out.out)["entries"][0]["findings"]}
    assert ("amendment 2", "amendment is not in the chain") in problems
    assert any(row.startswith("run ") and "not in the chain" in problem for row, problem in problems)


def test_exported_writeup_is_checked_against_the_logbook(cli, sealed, tmp_path):
    out = tmp_path / "export"
    assert cli("export", "1", "--out", out).code == 0
    writeup = out / "extra-output-gate-in-the-recurrent-cell.md"
    head = json.loads(cli("verify", "1", "--json").out)["entries"][0]["chain_head"]
    assert head in writeup.read_text()
    checked = cli("verify", "--export", writeup)
    assert checked.code == 0 and "matches" in checked.out

    edited = tmp_path / "edited.md"
    edited.write_text(writeup.read_text().replace("0.5", "0.4", 1))
    assert "0.4" in edited.read_text()
    result = cli("verify", "--export", edited)
    assert result.code == 3 and "does not match: line" in result.out

    assert cli("export", "1", "--format", "json", "--out", out).code == 0
    assert cli("verify", "--export", out / "extra-output-gate-in-the-recurrent-cell.json").code == 0
    add_runs(sealed, "gated", [0.47])  # the logbook moves on after the writeup
    stale = cli("verify", "--export", writeup, "--json")
    assert stale.code == 3 and json.loads(stale.out)["entries"][0]["result"] == "superseded"

    foreign = tmp_path / "foreign.md"
    foreign.write_text("| Chain head | `" + "ab" * 32 + "` |\n")
    assert cli("verify", "--export", foreign).code == 3


def test_requeue_adds_attempts_and_a_seed_that_diverged_stays_diverged(project, tmp_path):
    """7 ok + 3 diverged seeds on the candidate; requeue; the retries succeed, yet the verdict
    still counts 3 diverged seeds (on code that reset the row it turned POSITIVE with none)."""
    tickets = tmp_path / "tickets"
    slug = project.entry("flaky", "fakes:flaky", {
        "baseline": {"effect": 0.0, "sd": 0.2, "tickets": str(tickets / "b")},
        "cand": {"effect": 1.0, "sd": 0.2, "diverge": 3, "tickets": str(tickets / "c")},
    }, seeds=10)
    project.logbook("run", slug, "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    before = json.loads(project.logbook("verdict", slug, "--json").stdout)
    assert sum(math.isnan(v) if v is not None else True for v in before["arms"]["cand"]["values"]) == 3

    requeued = json.loads(project.logbook("requeue", slug, "--no-worker", "--json").stdout)["requeued"]
    assert len(requeued) == 3
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    runs = project.runs()
    retries = [r for r in runs if r["retry_of"] is not None]
    assert len(runs) == 23 and len(retries) == 3
    assert all(r["status"] == "succeeded" and r["attempt"] == 2 for r in retries)
    first = {r["id"]: r for r in runs}
    assert all(first[r["retry_of"]]["status"] == "diverged" and first[r["retry_of"]]["seed"] == r["seed"] for r in retries)

    after = json.loads(project.logbook("verdict", slug, "--json").stdout)
    values = after["arms"]["cand"]["values"]
    assert len(values) == 10 and sum(v is None or math.isnan(v) for v in values) == 3
    assert after["verdict"] == before["verdict"] and after["integrity"] == "verified"
    # a second requeue finds nothing to retry: the diverged attempts were retried already
    assert json.loads(project.logbook("requeue", slug, "--no-worker", "--json").stdout)["requeued"] == []
    shown = json.loads(project.logbook("show", slug, "--json").stdout)
    assert shown["runs"] == {"succeeded": 20}  # one per seed and arm: the latest attempt
    assert project.logbook("verify", slug).returncode == 0
    con = sqlite3.connect(project.db)
    assert con.execute("SELECT count(*) FROM chain_link WHERE kind = 'attempt'").fetchone()[0] == 23
    con.close()


def test_an_entry_view_checks_the_chain_once_and_the_next_refresh_checks_again(sealed):
    """The entry screen's detail and verdict both report the integrity: one check per refresh."""
    from logbook.db.engine import open_store
    from logbook.entries import chain
    from logbook.tui.data import entry_view

    store = open_store(sealed)
    checks = []
    real = chain.entry_integrity
    chain.entry_integrity = lambda *a, **k: checks.append(a[1]) or real(*a, **k)
    try:
        view = entry_view(store, 1)
        assert checks == [1]
        assert view["entry"]["integrity"] == view["verdict"]["integrity"] == "verified"
        con = sqlite3.connect(sealed)
        con.execute("DROP TRIGGER run_finished_immutable")
        con.execute("UPDATE run SET final_metrics = '{\"val_loss\": 0.1}' WHERE id = 1")
        con.commit()
        con.close()
        again = entry_view(store, 1)  # the next refresh sees the edit, in both parts
        assert checks == [1, 1]
        assert again["entry"]["integrity"] == again["verdict"]["integrity"] == "TAMPERED"
    finally:
        chain.entry_integrity = real
        store.dispose()


def test_points_digest_is_the_sha256_of_one_line_per_point(tmp_path):
    """A run's points digest is SHA-256 over ``id\\tname\\tstep\\tvalue!r\\n`` per point in (name, step,
    id) order, whatever the number of points (hashed in blocks internally), and runs do not mix."""
    import hashlib

    from sqlalchemy import create_engine

    from logbook.entries.chain import _digests, points_digest

    rows = [(run, i, name, step, value) for run in (1, 2) for i, (name, step, value) in enumerate(
        [(n, s, s * 0.1 + run if s % 7 else None) for n in ("acc", "loss") for s in range(6000)], start=run * 100_000)]
    expected = {}
    for run in (1, 2):
        h, count = hashlib.sha256(), 0
        for r, i, name, step, value in rows:
            if r == run:
                h.update(f"{i}\t{name}\t{step}\t{value!r}\n".encode())
                count += 1
        expected[run] = {"count": count, "sha256": h.hexdigest()}
    assert _digests(iter(rows), [1, 2]) == expected
    assert _digests(iter([]), [3]) == {3: {"count": 0, "sha256": hashlib.sha256().hexdigest()}}
    db = tmp_path / "points.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE metric_point (id INTEGER PRIMARY KEY, run_id INTEGER, name TEXT, step INTEGER, value REAL)")
    con.executemany("INSERT INTO metric_point (run_id, id, name, step, value) VALUES (?, ?, ?, ?, ?)", rows[::-1])
    con.commit()
    con.close()
    with create_engine(f"sqlite:///{db}").connect() as conn:
        assert points_digest(conn, 2) == expected[2]


@pytest.mark.parametrize("status", ["queued", "running", *FINISHED_STATUSES])
def test_a_run_takes_metric_points_only_while_active(sealed, status):
    """The insert trigger refuses a point for a run in any finished state, and takes one for a
    queued or running run; a refused point leaves nothing behind."""
    con = sqlite3.connect(sealed)
    trigger = con.execute("SELECT sql FROM sqlite_master WHERE name = 'metric_point_finished_insert'").fetchone()[0]
    assert "status <> 'running' AND status <> 'queued'" in trigger  # two comparisons, not a list per point
    arm_id = con.execute("SELECT id FROM arm WHERE name = 'gated'").fetchone()[0]
    run_id = con.execute("INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, cancel_requested)"
                         " VALUES (?, 777, 'planned', ?, 1, '2026-05-04', 0)", (arm_id, status)).lastrowid
    con.commit()
    before = con.execute("SELECT count(*) FROM metric_point").fetchone()[0]
    insert = "INSERT INTO metric_point (run_id, name, step, value) VALUES (?, 'val_loss', ?, 0.5)"
    if status in FINISHED_STATUSES:
        with pytest.raises(sqlite3.IntegrityError, match="the metric points of a finished run are immutable"):
            con.executemany(insert, [(run_id, 0), (run_id, 1)])
        con.rollback()
        assert con.execute("SELECT count(*) FROM metric_point").fetchone()[0] == before
    else:
        con.executemany(insert, [(run_id, 0), (run_id, 1)])
        con.commit()
        assert con.execute("SELECT count(*) FROM metric_point WHERE run_id = ?", (run_id,)).fetchone()[0] == 2
    con.close()
