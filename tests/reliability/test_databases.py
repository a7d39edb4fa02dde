"""Broken, missing and read-only databases: every verb refuses with one clear line (exit 2) and
changes and creates nothing; only `init` and `new` create; read verbs read a read-only logbook;
`logbook backup` copies a logbook that a worker is writing."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from logbook.db.engine import open_store
from logbook.errors import InputError
from tests.conftest import make_entry
from tests.reliability.helpers import digest, logbook_as_user, open_folder

READ_VERBS = [("list",), ("show", "1"), ("status",), ("verdict", "1"), ("export", "1", "--format", "json")]
WRITE_VERBS = [("run", "1", "--no-worker", "--yes"), ("cancel", "1"), ("requeue", "1"), ("register", "1"),
               ("amend", "1", "--field", "notes", "--value", "x", "--reason", "y"), ("worker", "--once")]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("verb", READ_VERBS + WRITE_VERBS + [("backup",), ("tui",)], ids=lambda v: v[0])
def test_a_missing_logbook_is_never_created(cli, tmp_path, verb):
    db = tmp_path / "typo" / "nested" / "logbook.db"
    before = _files(tmp_path)
    result = cli("--db", db, *verb)
    assert result.code == 2, result
    assert result.err.count("\n") == 1 and f"no logbook at {db}" in result.err
    assert "logbook init" in result.err and "logbook backup" in result.err
    assert _files(tmp_path) == before  # no database, no folder


@pytest.mark.parametrize("content", [b"", b"not a database at all\n" * 40, b"SQLite format 3\x00" + b"\xff" * 4000],
                         ids=["empty", "text", "corrupt-header"])
@pytest.mark.parametrize("verb", READ_VERBS + WRITE_VERBS + [("init",), ("backup",)], ids=lambda v: v[0])
def test_empty_and_corrupt_files_are_refused_and_left_alone(cli, tmp_path, content, verb):
    db = tmp_path / "lb" / "logbook.db"
    db.parent.mkdir()
    db.write_bytes(content)
    before = _files(tmp_path)
    result = cli("--db", db, *verb)
    assert result.code == 2, result
    assert result.err.count("\n") == 1, result.err
    assert str(db) in result.err and "nothing was" in result.err.lower()
    if content == b"":
        assert "empty (0 bytes)" in result.err and "logbook backup" in result.err
    assert db.read_bytes() == content and _files(tmp_path) == before


def test_new_creates_and_says_so_init_creates_the_folder(cli, tmp_path, example_file):
    db = tmp_path / "fresh" / "logbook.db"
    result = cli("--db", db, "new", example_file)
    assert result.code == 0 and f"created a new logbook at {db}" in result.err
    again = cli("--db", db, "new", example_file)
    assert again.code == 0 and "created" not in again.err
    other = tmp_path / "a" / "b" / "c.db"
    assert cli("--db", other, "init").code == 0 and other.exists()


def test_unknown_entries_and_runs_are_named_with_a_suggestion(cli, tmp_path):
    make_entry(cli, tmp_path)
    slug = json.loads(cli("list", "--json").out)["entries"][0]["slug"]
    typo = slug[:-3] + "xyz"
    for verb in (("show", typo), ("status", typo), ("verdict", typo)):
        result = cli(*verb)
        assert result.code == 2 and result.err.count("\n") == 1
        assert f"did you mean {slug!r}" in result.err, result.err
    for verb in ("cancel", "requeue"):
        result = cli(verb, "--run", "999")
        assert result.code == 2 and "--run: no run 999" in result.err and result.err.count("\n") == 1


def test_a_newer_schema_is_refused_by_every_verb_and_untouched(cli, db_path, tmp_path):
    make_entry(cli, tmp_path)
    con = sqlite3.connect(db_path)
    con.execute("UPDATE alembic_version SET version_num = 'ffff00009999'")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    before = digest(db_path)
    for verb in READ_VERBS + WRITE_VERBS + [("init",)]:
        result = cli(*verb)
        assert result.code == 2 and "ffff00009999" in result.err and result.err.count("\n") == 1, (verb, result)
    assert digest(db_path) == before


def _read_only_logbook(example: str) -> tuple[Path, Path]:
    """A logbook with one registered entry in a folder, then folder and file made read-only."""
    folder = open_folder()
    (folder / "lb").mkdir()
    db = folder / "lb" / "logbook.db"
    (folder / "e.yaml").write_text(example, encoding="utf-8")
    from click.testing import CliRunner

    from logbook.cli import cli as group

    result = CliRunner().invoke(group, ["--db", str(db), "new", str(folder / "e.yaml"), "--register"])
    assert result.exit_code == 0, result.output
    for side in ("-wal", "-shm"):  # a cleanly closed WAL database leaves neither
        assert not db.with_name(db.name + side).exists()
    db.chmod(0o444)
    db.parent.chmod(0o555)
    return folder, db


def test_read_only_logbook_reads_and_refuses_writes_by_name(example_file):
    folder, db = _read_only_logbook(example_file.read_text())
    out_dir = folder / "out"
    out_dir.mkdir()
    out_dir.chmod(0o777)
    try:
        before, files_before = digest(db), sorted(p.name for p in db.parent.iterdir())
        listed = logbook_as_user("--db", db, "list", "--json", cwd=folder)
        assert listed.returncode == 0, listed.stderr
        assert [e["title"] for e in json.loads(listed.stdout)["entries"]] == ["Extra output gate in the recurrent cell"]
        for verb in (("show", "1"), ("export", "1", "--format", "json", "--out", out_dir)):
            result = logbook_as_user("--db", db, *verb, cwd=folder)
            assert result.returncode == 0, (verb, result.stderr)
            assert "not a" not in result.stderr
        assert len(list(out_dir.glob("*.json"))) == 2  # the table and its verdict
        for verb in (("init",), ("run", "1", "--no-worker", "--yes")):
            result = logbook_as_user("--db", db, *verb, cwd=folder)
            assert result.returncode == 2, (verb, result.stdout, result.stderr)
            assert "read-only" in result.stderr and result.stderr.count("\n") == 1, (verb, result.stderr)
            assert "ready" not in result.stdout
        assert digest(db) == before
        assert sorted(p.name for p in db.parent.iterdir()) == files_before  # no -wal, -shm or lock files
    finally:
        db.parent.chmod(0o755)
        shutil.rmtree(folder)


def test_read_only_file_in_a_writable_folder(example_file):
    folder, db = _read_only_logbook(example_file.read_text())
    db.parent.chmod(0o777)  # the folder can be written, the file cannot
    try:
        before = digest(db)
        assert logbook_as_user("--db", db, "list", cwd=folder).returncode == 0
        init = logbook_as_user("--db", db, "init", cwd=folder)
        assert init.returncode == 2 and "cannot write" in init.stderr and "read-only" in init.stderr, init.stderr
        assert digest(db) == before
    finally:
        db.parent.chmod(0o755)
        shutil.rmtree(folder)


def test_export_to_an_unwritable_folder_is_one_line(example_file):
    folder = open_folder()
    try:
        db = folder / "logbook.db"
        from click.testing import CliRunner

        from logbook.cli import cli as group

        assert CliRunner().invoke(group, ["--db", str(db), "new", str(example_file), "--register"]).exit_code == 0
        for path in (db, folder):
            path.chmod(0o777 if path == folder else 0o666)
        locked = folder / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)
        result = logbook_as_user("--db", db, "export", "1", "--out", locked / "deeper", cwd=folder)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("--out: cannot write to") and result.stderr.count("\n") == 1
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(folder)


def _write_points(db: str, run_ids: list[int], seconds: float, ready) -> None:  # noqa: ANN001
    """A worker's write pattern: batches of metric points, each in its own transaction."""
    from logbook.db.engine import open_store
    from logbook.engine.ingest import write_chunks

    store = open_store(db, mode="write")
    ready.set()
    step, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        write_chunks(store, [(r, "".join(f'{{"step": {step + i}, "name": "loss", "value": {float(step + i)!r}}}\n'
                                         for i in range(50)).encode()) for r in run_ids])
        step += 50
    store.dispose()


def test_backup_while_a_writer_commits_is_consistent(cli, db_path, tmp_path):
    make_entry(cli, tmp_path)
    assert cli("run", "1", "--no-worker", "--yes").code == 0
    run_ids = [r[0] for r in sqlite3.connect(db_path).execute("SELECT id FROM run ORDER BY id")]
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    writer = ctx.Process(target=_write_points, args=(str(db_path), run_ids, 3.0, ready))
    writer.start()
    try:
        assert ready.wait(30)
        time.sleep(0.3)
        copies = []
        for i in range(3):
            result = cli("backup", tmp_path / f"copy{i}.db", "--json")
            assert result.code == 0, result.err
            copies.append(json.loads(result.out))
            time.sleep(0.2)
    finally:
        writer.join(30)
    assert writer.exitcode == 0
    counts = []
    for info in copies:
        con = sqlite3.connect(info["backup"])
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        points = con.execute("SELECT count(*) FROM metric_point").fetchone()[0]
        # every batch is whole: one transaction of 50 points per run
        per_run = con.execute("SELECT count(*) FROM metric_point GROUP BY run_id").fetchall()
        assert {n for (n,) in per_run} <= {points // len(run_ids)} and points % (50 * len(run_ids)) == 0
        assert info["metric_points"] == points and info["entries"] == 1 and info["runs"] == len(run_ids)
        counts.append(points)
        con.close()
    assert counts == sorted(counts) and counts[-1] > 0  # taken while the writer kept adding
    final = sqlite3.connect(db_path).execute("SELECT count(*) FROM metric_point").fetchone()[0]
    assert final >= counts[-1]
    again = cli("backup", tmp_path / "copy0.db")
    assert again.code == 2 and "already exists" in again.err
    default = cli("backup")
    assert default.code == 0 and "backups" in default.out and len(list((db_path.parent / "backups").glob("*.db"))) == 1


def test_library_open_refuses_an_empty_file_in_every_mode(db_path):
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"")
    for mode in ("create", "write", "read", "auto"):
        with pytest.raises(InputError, match=r"empty \(0 bytes\)"):
            open_store(db_path, mode=mode)
    assert db_path.read_bytes() == b""
