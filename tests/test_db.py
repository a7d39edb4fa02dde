"""The SQLite store: upgrade on open, refusal of unknown revisions, pragmas, triggers, packaging."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from logbook.db import engine as dbengine
from logbook.db.engine import head_revision, open_store
from logbook.db.models import Arm, Hypothesis, metadata
from logbook.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_database_is_created_at_head_with_wal_and_foreign_keys(db_path):
    store = open_store(db_path)
    try:
        con = sqlite3.connect(db_path)
        assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"hypothesis", "arm", "run", "metric_point", "amendment", "audit", "worker"} <= tables
        con.close()
        assert store.journal_mode == "wal"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == dbengine.BUSY_TIMEOUT_MS
    finally:
        store.dispose()


def test_empty_file_is_refused_never_recreated(db_path):
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty \(0 bytes\).*logbook backup"):
        open_store(db_path)
    assert db_path.read_bytes() == b""


def test_database_from_a_newer_version_is_refused_and_untouched(db_path, cli):
    open_store(db_path).dispose()
    con = sqlite3.connect(db_path)
    con.execute("UPDATE alembic_version SET version_num = 'f00dfeed9999'")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    before = digest(db_path)
    with pytest.raises(InputError, match="newer than this logbook knows"):
        open_store(db_path)
    result = cli("--db", db_path, "list")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "f00dfeed9999" in result.err and "Nothing was changed" in result.err
    assert digest(db_path) == before


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    con.close()
    before = digest(path)
    with pytest.raises(InputError, match="not a logbook database"):
        open_store(path)
    assert digest(path) == before


def test_models_and_migrations_agree(db_path):
    open_store(db_path).dispose()
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()
    assert diffs == []


def test_migrations_downgrade_to_base_and_back(db_path):
    from alembic import command
    from alembic.config import Config

    open_store(db_path).dispose()
    cfg = Config()
    cfg.set_main_option("script_location", str(dbengine.migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{db_path}")
    command.downgrade(cfg, "base")
    tables = {r[0] for r in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables <= {"alembic_version"}
    open_store(db_path).dispose()
    assert sqlite3.connect(db_path).execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()


def test_foreign_keys_are_enforced_and_drafts_cascade(db_path):
    store = open_store(db_path)
    try:
        with store.session() as session:
            session.add(Arm(hypothesis_id=999, name="a", role="baseline", trainer={}, config={}, config_hash="x"))
            with pytest.raises(IntegrityError):
                session.commit()
        with store.session() as session:
            entry = Hypothesis(slug="s", title="t", statement="h", metric="m", goal="maximize", seeds_per_arm=5,
                               planned_seeds=[], trainer={"name": "x"}, baseline_arm="a", tags=[])
            session.add(entry)
            session.flush()
            session.add(Arm(hypothesis_id=entry.id, name="a", role="baseline", trainer={}, config={}, config_hash="x"))
            session.commit()
            entry_id = entry.id
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM hypothesis WHERE id = :id"), {"id": entry_id})
            assert conn.execute(text("SELECT count(*) FROM arm")).scalar() == 0
    finally:
        store.dispose()


def test_network_filesystem_falls_back_to_rollback_journal(db_path, monkeypatch):
    monkeypatch.setattr(dbengine, "filesystem_type", lambda path: "nfs4")
    store = open_store(db_path)
    try:
        assert store.journal_mode == "delete"
        assert len(store.notes) == 1 and "nfs4" in store.notes[0] and "WAL" in store.notes[0]
    finally:
        store.dispose()


def test_filesystem_type_reads_the_mount_table():
    assert dbengine.filesystem_type(Path("/")) not in (None, "")


def test_two_processes_opening_a_new_database_at_once_both_succeed(db_path):
    code = f"from logbook.db.engine import open_store; open_store({str(db_path)!r}).dispose()"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    con = sqlite3.connect(db_path)
    assert con.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1


def test_wheel_ships_migrations_and_upgrades_without_the_checkout(tmp_path):
    """A non-editable install (built wheel, installed elsewhere) can create and upgrade a logbook."""
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheel_dir), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = wheel_dir.glob("negative_results_logbook-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "logbook/migrations/env.py" in names
    assert "logbook/migrations/script.py.mako" in names
    assert any(n.startswith("logbook/migrations/versions/0001") for n in names)
    assert "logbook/data/gated-rnn.yaml" in names
    sources = {p.relative_to(REPO).as_posix() for folder in ("logbook", "trainers") for p in (REPO / folder).rglob("*.py")}
    assert sources <= set(names), sources - set(names)  # every module ships
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    code = (
        "import logbook.db.engine as e, sys;"
        f"assert e.migrations_dir().is_relative_to({str(target)!r}), e.migrations_dir();"
        f"s = e.open_store({str(tmp_path / 'w.db')!r}); print(s.journal_mode)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    con = sqlite3.connect(tmp_path / "w.db")
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()


def test_upgrade_keeps_child_rows_of_rebuilt_tables(db_path):
    """0002 rebuilds the run table (batch mode); metric points that cascade from runs must survive,
    which needs the migration to run with foreign keys off."""
    from alembic import command
    from alembic.config import Config

    db_path.parent.mkdir(parents=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(dbengine.migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{db_path}")
    command.upgrade(cfg, "0001")
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA foreign_keys = ON")
    con.execute(
        "INSERT INTO hypothesis (id, slug, title, statement, metric, goal, alpha, seeds_per_arm, planned_seeds, trainer,"
        " baseline_arm, deterministic, tags, notes, status, source_text, created_at, updated_at)"
        " VALUES (1, 's', 't', 'h', 'm', 'maximize', 0.05, 5, '[]', '{}', 'a', 0, '[]', '', 'draft', '', '2026-01-01', '2026-01-01')")
    con.execute("INSERT INTO arm (id, hypothesis_id, name, role, position, trainer, config, config_hash, created_at, added_by_amendment)"
                " VALUES (1, 1, 'a', 'baseline', 0, '{}', '{}', 'x', '2026-01-01', 0)")
    con.execute("INSERT INTO run (id, arm_id, seed, seed_origin, status, attempt, queued_at) VALUES (1, 1, 7, 'planned', 'succeeded', 1, '2026-01-01')")
    con.executemany("INSERT INTO metric_point (run_id, name, step, value) VALUES (1, 'loss', ?, ?)", [(i, 1.0 / (i + 1)) for i in range(50)])
    con.commit()
    con.close()
    open_store(db_path).dispose()
    con = sqlite3.connect(db_path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision() != "0001"
    assert con.execute("SELECT count(*) FROM metric_point").fetchone()[0] == 50
    assert con.execute("SELECT seed, cancel_requested FROM run").fetchall() == [(7, 0)]
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []


def test_the_head_read_from_the_migration_files_is_alembics():
    from logbook.db.engine import _script_directory, declared_head

    assert declared_head() == _script_directory().get_heads()[0]
