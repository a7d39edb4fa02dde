"""Opening the SQLite store: connection pragmas, journal mode, and upgrade to the newest schema.

Every connection gets foreign keys on, a busy timeout and ``synchronous=NORMAL``. The journal is
WAL, so readers (the TUI) never block the worker's writes, except on a network file system
(NFS, Lustre, CIFS, ...), where WAL's shared memory cannot work across hosts: there the store
falls back to the rollback journal and says so in ``Store.notes``.

Opening a store upgrades its schema to head with Alembic, under a file lock, with foreign keys
off (a batch rebuild of a parent table would otherwise cascade-delete its children). A database
stamped with a revision this code does not know is refused and left untouched.

Every caller says what it needs (``mode``): ``create`` (only `init` and `new` may make a new
database), ``write``, ``read`` (opened read-only: SQLite ``mode=ro``, or ``immutable=1`` where the
folder is read-only and the WAL's shared-memory file cannot be created), or ``auto`` (write where
the file and folder allow it, else read). A missing, empty (0-byte) or non-SQLite file is refused
with one line saying how to restore a backup; nothing is created, not even a folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from logbook.db.reads import BUSY_TIMEOUT_MS, connect_readonly
from logbook.errors import InputError, LogbookError

NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "lustre", "cifs", "smb3", "smbfs", "gpfs", "beegfs", "glusterfs",
     "fuse.glusterfs", "fuse.sshfs", "9p", "afs", "ceph", "fuse.ceph", "panfs", "orangefs"}
)


@dataclass
class Store:
    """An open logbook database: its path, SQLAlchemy engine and any notes worth telling a user."""

    path: Path
    engine: Engine
    journal_mode: str
    notes: list[str] = field(default_factory=list)
    read_only: bool = False

    def session(self, *, write: bool = False) -> Session:
        """An ORM session. ``write=True`` starts its transaction with BEGIN IMMEDIATE: a
        transaction that reads and then writes must hold the write lock from the start, or a
        concurrent writer makes SQLite fail it at once ("database is locked", no busy wait)."""
        return Session(self.write_engine if write else self.engine, expire_on_commit=False)

    def begin_write(self):  # noqa: ANN201
        """A core connection in a BEGIN IMMEDIATE transaction (see ``session``)."""
        return self.write_engine.begin()

    @cached_property
    def write_engine(self) -> Engine:
        return self.engine.execution_options(sqlite_begin="IMMEDIATE")

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A plain DB-API connection inside one read transaction, for ``logbook.db.reads``."""
        raw = self.engine.raw_connection()
        conn = raw.driver_connection
        try:
            conn.execute("BEGIN")  # every connection here has isolation_level None: transactions are explicit
            try:
                yield conn
            finally:
                if conn.in_transaction:  # SQLite may have rolled back already (an I/O error, a full disk)
                    conn.execute("ROLLBACK")
        finally:
            raw.close()

    def dispose(self) -> None:
        self.engine.dispose()


class ChangeWatch:
    """Whether anyone committed to a store since the last look: SQLite's ``PRAGMA data_version``
    on one connection kept for the purpose (it changes when another connection commits, this
    process's included). Views that refresh on a timer skip the re-read while nothing changed.
    Any failure to ask counts as a change (the view re-reads, as it would without a watch)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._conn = None
        self._seen: int | None = None
        self._lock = threading.Lock()

    def changed(self) -> bool:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._store.engine.raw_connection()
                version = self._conn.cursor().execute("PRAGMA data_version").fetchone()[0]
            except Exception:  # noqa: BLE001 (a watch that cannot ask says "changed"; the re-read reports real errors)
                self.close()
                return True
            changed, self._seen = version != self._seen, version
            return changed

    def forget(self) -> None:
        """The next look says "changed" whatever happened (the last read did not complete)."""
        with self._lock:
            self._seen = None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
            self._seen = None


def filesystem_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (from /proc/self/mounts), or None if unknown."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", None
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount_point = parts[1].replace("\\040", " ")
        prefix = mount_point.rstrip("/") + "/"
        if (target == mount_point or target.startswith(prefix) or mount_point == "/") and len(mount_point) > len(best):
            best, best_type = mount_point, parts[2]
    return best_type


def choose_journal_mode(db_path: Path) -> tuple[str, str | None]:
    """WAL, or DELETE with a note saying why, when the folder is on a network file system."""
    fs = filesystem_type(db_path.parent)
    if fs in NETWORK_FILESYSTEMS:
        return "delete", (
            f"{db_path}: on a {fs} network file system, where SQLite's WAL mode cannot work; "
            "using the rollback journal (readers may briefly wait for writers). "
            "Set LOGBOOK_DB to a local disk for the best behaviour."
        )
    return "wal", None


SQLITE_HEADER = b"SQLite format 3\x00"
MODES = ("create", "write", "read", "auto")


def _restore_hint(db_path: Path) -> str:
    return f"to restore, copy a backup made by `logbook backup` to {db_path}"


def database_problem(db_path: Path) -> str | None:
    """Why the file at ``db_path`` cannot be a logbook database (missing, a folder, empty, not
    SQLite), as one line that says how to recover; None when it looks like a SQLite database."""
    if not db_path.exists():
        return (f"no logbook at {db_path} (run `logbook init` to start one, pass --db or set LOGBOOK_DB to use "
                f"another; {_restore_hint(db_path)}); nothing was created")
    if db_path.is_dir():
        return f"{db_path}: is a folder; expected a database file path"
    try:
        with open(db_path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"{db_path}: cannot read the database file ({exc.strerror}); nothing was changed"
    if not header:
        return (f"{db_path}: the database file is empty (0 bytes), so this logbook's records are gone; nothing was "
                f"changed: {_restore_hint(db_path)}, or delete the file and run `logbook init` to start an empty one")
    if header != SQLITE_HEADER:
        return (f"{db_path}: not a SQLite database (its first bytes are not a SQLite header); nothing was changed: "
                f"{_restore_hint(db_path)}")
    return None


def write_problem(db_path: Path) -> str | None:
    """Why this process cannot write the database (read-only file or folder), or None. The folder
    matters too: SQLite creates its journal, WAL and shared-memory files beside the database."""
    if db_path.exists() and not os.access(db_path, os.W_OK):
        return "the file is read-only"
    folder = db_path.parent if db_path.parent.exists() else next((p for p in db_path.parents if p.exists()), None)
    if folder is not None and not os.access(folder, os.W_OK):
        return f"its folder {folder} is read-only"
    return None


def _make_engine(db_path: Path, *, foreign_keys: bool, journal_mode: str) -> Engine:
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        # Let SQLAlchemy's "begin" event below emit BEGIN itself, so transactions (and DDL inside
        # migrations) are real SQLite transactions rather than pysqlite's partial emulation.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA journal_mode = {journal_mode}")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def migrations_dir() -> Path:
    """The Alembic script folder: ``logbook.migrations`` when installed, ``migrations/`` in a checkout."""
    import logbook.migrations as pkg

    return Path(pkg.__file__).resolve().parent


@lru_cache(maxsize=1)
def _script_directory():
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(migrations_dir()))


_REVISION_LINE = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:["']([^"']+)["']|(None))\s*(?:#.*)?$""", re.M)


@lru_cache(maxsize=1)
def declared_head() -> str | None:
    """The newest revision read from the migration files' ``revision``/``down_revision`` lines,
    without importing Alembic (about half a second: every CLI verb opens the store); None when
    the files do not say it plainly (a merge, a computed value, not one head), and the caller
    asks Alembic."""
    revisions: dict[str, str | None] = {}
    for path in sorted((migrations_dir() / "versions").glob("*.py")):
        found = {name: value for name, value, _none in _REVISION_LINE.findall(path.read_text(encoding="utf-8"))}
        if "revision" not in found:
            continue  # __init__.py and helpers
        if "down_revision" not in found or found["revision"] in revisions:
            return None
        revisions[found["revision"]] = found["down_revision"] or None
    heads = set(revisions) - set(revisions.values())
    return next(iter(heads)) if len(heads) == 1 else None


def head_revision() -> str:
    heads = _script_directory().get_heads()
    if len(heads) != 1:
        raise LogbookError(f"migrations have {len(heads)} heads; expected one")
    return heads[0]


def known_revisions() -> set[str]:
    return {script.revision for script in _script_directory().walk_revisions()}


def read_revision(db_path: Path) -> tuple[str | None, bool]:
    """The Alembic revision stamped in the database (or None) and whether it holds other tables.

    Opened read-only, so a database that will be refused is never changed.
    """
    if not db_path.exists() or db_path.stat().st_size == 0:
        return None, False
    try:
        conn, _ = connect_readonly(db_path)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{db_path}: cannot open as a SQLite database ({exc}); nothing was changed: "
                         f"{_restore_hint(db_path)}") from exc
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        others = bool(tables - {"alembic_version"})
        if "alembic_version" not in tables:
            return None, others
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return (row[0] if row else None), others
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{db_path}: not a SQLite database ({exc}); nothing was changed: {_restore_hint(db_path)}") from exc
    finally:
        conn.close()


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade(db_path: Path, journal_mode: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = _make_engine(db_path, foreign_keys=False, journal_mode=journal_mode)
    try:
        with engine.connect() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(migrations_dir()))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
    finally:
        engine.dispose()


def ensure_schema(db_path: Path, journal_mode: str = "wal", *, read_only: bool = False) -> None:
    """Bring the database at ``db_path`` to the newest schema, creating it if needed.

    Raises InputError, touching nothing, when the file is not a logbook database, was written
    by a newer version of this program, or (``read_only``) needs an upgrade it cannot be given.
    """
    current, has_tables = read_revision(db_path)
    if current is not None and current == declared_head():
        return  # the common case, decided without Alembic
    head = head_revision()
    if current == head:
        return
    if current is None and has_tables:
        raise InputError(f"{db_path}: not a logbook database (it has tables but no schema revision)")
    if current is not None and current not in known_revisions():
        raise InputError(
            f"{db_path}: database schema revision {current} is newer than this logbook knows "
            f"(newest known: {head}); upgrade negative-results-logbook to open it. Nothing was changed."
        )
    if read_only:
        raise InputError(
            f"{db_path}: read-only, and its schema (revision {current}) is older than this logbook's ({head}); "
            "open it once where it can be written, or read a writable copy. Nothing was changed."
        )
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(db_path.with_name(db_path.name + ".lock")):
        current, _ = read_revision(db_path)  # another process may have upgraded meanwhile
        if current != head:
            _upgrade(db_path, journal_mode)


def open_store(db_path: Path | str, *, mode: str = "create", create: bool | None = None) -> Store:
    """Open the logbook database at ``db_path`` for ``mode`` (see the module's docstring).

    Library callers (tests, benchmarks, the demo) get ``create`` by default; every CLI verb names
    its mode. ``create`` is the older spelling: True means ``mode="create"``, False ``mode="write"``.
    Raises InputError (exit 2), having created and changed nothing, when the file cannot serve.
    """
    if create is not None:
        mode = "create" if create else "write"
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    db_path = Path(db_path)
    if db_path.is_dir():
        raise InputError(f"{db_path}: is a folder; expected a database file path")
    creating = mode == "create" and not db_path.exists()
    if not creating:
        problem = database_problem(db_path)
        if problem:
            raise InputError(problem)
    cannot_write = write_problem(db_path)
    if mode == "auto":
        mode = "read" if cannot_write else "write"
    if mode == "read":
        return _open_read_only(db_path, writable=cannot_write is None)
    if cannot_write:
        verb = "create" if creating else "write"
        raise InputError(f"{db_path}: cannot {verb} it: {cannot_write}; nothing was changed")
    if creating:
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{db_path}: cannot create its folder ({exc.strerror})") from exc
    journal_mode, note = choose_journal_mode(db_path)
    ensure_schema(db_path, journal_mode)
    engine = _make_engine(db_path, foreign_keys=True, journal_mode=journal_mode)
    with engine.connect() as conn:
        actual = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    notes = [note] if note else []
    if journal_mode == "wal" and actual != "wal":
        notes.append(f"{db_path}: SQLite refused WAL mode here; using the {actual} journal instead")
    return Store(path=db_path, engine=engine, journal_mode=str(actual), notes=notes)


def _open_read_only(db_path: Path, *, writable: bool) -> Store:
    """A store whose connections cannot write (``mode=ro``, ``query_only``); upgraded first only
    when the file could be written anyway."""
    if writable:
        ensure_schema(db_path, choose_journal_mode(db_path)[0])
    else:
        ensure_schema(db_path, read_only=True)
    try:
        probe, immutable = connect_readonly(db_path)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{db_path}: read-only, and SQLite cannot read it ({exc}); nothing was changed") from exc
    journal = probe.execute("PRAGMA journal_mode").fetchone()[0]
    probe.close()
    notes = []
    wal = db_path.with_name(db_path.name + "-wal")
    if immutable and wal.exists() and wal.stat().st_size > 0:
        notes.append(f"{db_path}: read-only folder: changes still in {wal.name} are not shown")

    def connect() -> sqlite3.Connection:
        return connect_readonly(db_path, immutable)[0]

    engine = create_engine(f"sqlite:///{db_path}", creator=connect)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA query_only = ON")
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN")

    return Store(path=db_path, engine=engine, journal_mode=str(journal), notes=notes, read_only=True)
