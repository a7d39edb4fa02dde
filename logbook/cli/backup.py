"""The `backup` verb: a consistent copy of the logbook, taken while a worker may be writing.

SQLite's online backup API copies the database page by page inside one read transaction, so the
copy is the database as it was at one moment, whatever the worker commits meanwhile (in WAL mode
readers do not block the writer). The copy is written to a temporary file beside the target,
checked with ``PRAGMA integrity_check``, switched to a rollback journal (one self-contained file)
and only then renamed into place: a failed backup leaves nothing behind and never overwrites.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import click

from logbook.cli.common import emit_json, json_option
from logbook.errors import InputError, LogbookError

COUNTED_TABLES = {"entries": "hypothesis", "runs": "run", "metric_points": "metric_point"}


def default_target(db_path: Path, folder: Path | None = None) -> Path:
    """``FOLDER/<name>-<UTC time>.db``; FOLDER defaults to ``backups/`` beside the database."""
    from logbook.db.paths import backups_dir

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return (folder or backups_dir(db_path)) / f"{db_path.stem}-{stamp}.db"


def copy_database(source: Path, target: Path) -> dict[str, int | str]:
    """Copy ``source`` to ``target`` (which must not exist) with the online backup API; returns
    what the copy holds. Raises LogbookError, leaving no file, when the copy is not intact."""
    from logbook.db.engine import connect_readonly

    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    src, _ = connect_readonly(source)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one consistent moment
            dst.execute("PRAGMA journal_mode = DELETE")
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise LogbookError(f"{target}: the copy failed SQLite's integrity check ({check}); nothing was kept")
            tables = {row[0] for row in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            held: dict[str, int | str] = {
                label: dst.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)
                for label, table in COUNTED_TABLES.items() if table in tables
            }
            if "alembic_version" in tables:
                row = dst.execute("SELECT version_num FROM alembic_version").fetchone()
                held["schema_revision"] = row[0] if row else ""
        finally:
            dst.close()
        if target.exists():  # appeared meanwhile: never overwrite
            raise InputError(f"PATH: {target} already exists; expected a new file name or a folder")
        os.replace(tmp, target)
    finally:
        src.close()
        tmp.unlink(missing_ok=True)
    return held


@click.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@json_option
@click.pass_context
def backup(ctx: click.Context, path: Path | None, as_json: bool) -> None:
    """Copy the logbook to PATH (a new file, or a folder), safely while a worker writes.

    Without PATH the copy goes to backups/ beside the database, named by the time. Restore by
    stopping workers and copying the file back over the database (see the README)."""
    from logbook.db.engine import connect_readonly, database_problem
    from logbook.db.paths import resolve_db_path

    source = resolve_db_path(ctx.obj.get("db"))
    problem = database_problem(source)
    if problem:
        raise InputError(problem)
    if path is None or path.is_dir():
        target = default_target(source, path)
    else:
        target = path
    target = target.expanduser().resolve()
    if target.exists():
        raise InputError(f"PATH: {target} already exists; expected a new file name or a folder (backups never overwrite)")
    if target == source.resolve():
        raise InputError("PATH: is the database itself; expected another file")
    try:
        connect_readonly(source)[0].close()  # a file SQLite cannot read is refused before anything is made
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{source}: cannot be read for a backup ({exc}); nothing was written or changed") from exc
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        held = copy_database(source, target)
    except PermissionError as exc:
        raise InputError(f"PATH: cannot write {target} ({exc.strerror}); expected a folder you can write") from exc
    except sqlite3.DatabaseError as exc:
        for folder in made:  # leave no empty folders behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise InputError(f"{source}: cannot be read for a backup ({exc}); nothing was written or changed") from exc
    info = {"db": str(source), "backup": str(target), "bytes": target.stat().st_size, **held}
    if as_json:
        emit_json(info)
        return
    counts = ", ".join(f"{held[k]} {k.replace('_', ' ')}" for k in COUNTED_TABLES if k in held)
    click.echo(f"backed up {source} to {target} ({counts}; integrity ok)")
