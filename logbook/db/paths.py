"""Where the logbook lives: the database file and the folder for run outputs.

Order of precedence: ``--db PATH``, then ``LOGBOOK_DB``, then ``.logbook/logbook.db`` at the root
of the git repository that contains the current directory, else in the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

DB_ENV = "LOGBOOK_DB"
DEFAULT_DIR = ".logbook"
DEFAULT_NAME = "logbook.db"


def find_git_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` holding ``.git`` (a folder or a worktree file)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def default_db_path(cwd: Path | None = None) -> Path:
    """The database used when neither ``--db`` nor ``LOGBOOK_DB`` is given."""
    cwd = Path.cwd() if cwd is None else cwd
    root = find_git_root(cwd) or cwd.resolve()
    return root / DEFAULT_DIR / DEFAULT_NAME


def resolve_db_path(option: str | os.PathLike | None = None, cwd: Path | None = None) -> Path:
    """The database path to use, from the option, the environment, or the default."""
    if option:
        return Path(option).expanduser().resolve()
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return default_db_path(cwd)


def runs_dir(db_path: Path) -> Path:
    """The folder beside the database where run folders and logs go."""
    return db_path.parent / "runs"


def own_paths(db_path: Path) -> list[Path]:
    """What the logbook itself writes, which must never count as a change to the user's tree:
    the whole folder when it is the logbook's own (``.logbook/``), else the database file, its
    SQLite side files and the runs folder."""
    if db_path.parent.name == DEFAULT_DIR:
        return [db_path.parent]
    sidecars = [db_path.with_name(db_path.name + suffix) for suffix in ("-wal", "-shm", "-journal", ".lock")]
    return [db_path, *sidecars, runs_dir(db_path)]


def write_own_gitignore(db_path: Path) -> Path | None:
    """In the logbook's own folder (``.logbook/``), a ``.gitignore`` that ignores everything, so the
    database and run folders never make the user's tree dirty. Returns the file when it wrote it."""
    if db_path.parent.name != DEFAULT_DIR:
        return None
    ignore = db_path.parent / ".gitignore"
    if ignore.exists():
        return None
    ignore.write_text("# Written by `logbook init`: the logbook's database and run folders are not source.\n*\n",
                      encoding="utf-8")
    return ignore


def run_folder(db_path: Path, entry_slug: str, arm: str, seed: int, run_id: int) -> Path:
    """The folder of one run: its job, log, metrics stream, result and predictions."""
    return runs_dir(db_path) / entry_slug / arm / f"{seed}-r{run_id}"
