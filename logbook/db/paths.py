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


def run_folder(db_path: Path, entry_slug: str, arm: str, seed: int, run_id: int) -> Path:
    """The folder of one run: its job, log, metrics stream, result and predictions."""
    return runs_dir(db_path) / entry_slug / arm / f"{seed}-r{run_id}"
