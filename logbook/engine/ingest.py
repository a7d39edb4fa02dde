"""Moving metric points from a run's ``metrics.jsonl`` into the database, fast.

The worker reads what each running run appended since its last look and inserts it in one
transaction per loop (every ``poll_s``), so a live curve is in the database well within a second
of the trainer's flush. The cost per point is what limits a logbook fed by many runs logging
every step, so no Python object is made per point where it can be helped:

- the fast path: the complete lines read are joined into one JSON array and handed to SQLite in
  one ``INSERT … SELECT … FROM json_each(?)``: SQLite parses the numbers and inserts the rows
  without a round trip through Python per point (about twice as fast as the driver path,
  ``benchmarks/engine.py --ingest-only``);
- the driver path: the same lines parsed by Python's C decoder as one array (or, if that fails,
  line by line, skipping torn or foreign lines), then plain tuples through ``executemany``.

The fast path is taken only where it stores what the driver path would:

- the lines are ``child.FileReporter``'s, the file's only writer: names without escapes, integer
  steps, finite float values written with ``repr``. A chunk holding a backslash (an escaped name),
  ``NaN`` or ``Infinity`` goes the driver path; so does one SQLite refuses (a torn or foreign line)
  or one whose inserted rows are not all an integer step and a real value (a null, a fraction or
  a list where a number belongs): those rows are deleted again first, in the same transaction.
  (A value written as a JSON string would be converted by SQLite; FileReporter never writes one.)
- this SQLite's JSON reader turns decimal text into exactly the double Python's ``float`` does.
  SQLite's own text-to-real conversion is not exact on every build (on this machine's 3.40 it is
  1 ulp off for 0.55% of doubles of random bit patterns stored as text), so once per process
  ``sqlite_reads_floats_exactly`` reads back 4,096 doubles of random bit patterns through
  ``json_each`` and compares every bit; any difference, or no JSON support, turns the fast path
  off for the process.

Non-finite values travel as JSON ``NaN``/``Infinity``; SQLite has no NaN and stores it as NULL.
"""

from __future__ import annotations

import json
import math
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from logbook.db.engine import Store

INSERT_SQL = "INSERT INTO metric_point (run_id, name, step, value) VALUES (?, ?, ?, ?)"
JSON_INSERT_SQL = ("INSERT INTO metric_point (run_id, name, step, value) SELECT ?, json_extract(value, '$.name'),"
                   " json_extract(value, '$.step'), json_extract(value, '$.value') FROM json_each(?)")
MISTYPED_SQL = ("SELECT count(*) FROM metric_point WHERE id > ? AND run_id = ?"
                " AND (typeof(step) <> 'integer' OR typeof(value) <> 'real')")
# bytes in a chunk that send it the driver path: escapes in names, and the non-finite values
# (JSON has no NaN/Infinity; SQLite either refuses them or, from 3.42, reads them its own way)
NOT_FAST = (b"\\", b"NaN", b"Infinity")
FLOAT_PROBE_SIZE = 4096
Point = tuple  # (run_id, name, step, value)

_reads_exactly: bool | None = None  # per process: the SQLite library is the process's


@dataclass
class PointStream:
    """Where the worker is in one run's metrics.jsonl."""

    path: Path
    offset: int = 0
    partial: bytes = b""


def read_chunk(stream: PointStream) -> bytes:
    """The complete lines appended since the last read (an incomplete last line waits)."""
    try:
        with open(stream.path, "rb") as handle:
            handle.seek(stream.offset)
            data = handle.read()
    except FileNotFoundError:
        return b""
    stream.offset += len(data)
    data = stream.partial + data
    cut = data.rfind(b"\n") + 1
    stream.partial = data[cut:]
    return data[:cut]


def read_whole(path: Path) -> bytes:
    """Every complete line of a metrics file (a run's whole stream, read once)."""
    return read_chunk(PointStream(path))


def parse_points(chunk: bytes, run_id: int) -> list[Point]:
    """Rows from complete JSON lines ``{"step": .., "name": .., "value": ..}``; bad lines skipped."""
    body = chunk.strip()
    if not body:
        return []
    try:
        records = json.loads(b"[" + body.replace(b"\n", b",") + b"]")
        return [(run_id, str(r["name"]), int(r["step"]), float(r["value"])) if type(r["step"]) is not int
                or type(r["value"]) is not float or type(r["name"]) is not str
                else (run_id, r["name"], r["step"], r["value"]) for r in records]
    except (ValueError, KeyError, TypeError):
        return _parse_lines(chunk, run_id)


def _parse_lines(chunk: bytes, run_id: int) -> list[Point]:
    rows = []
    for line in chunk.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            rows.append((run_id, str(record["name"]), int(record["step"]), float(record["value"])))
        except (ValueError, KeyError, TypeError):
            continue
    return rows


def probe_doubles(count: int = FLOAT_PROBE_SIZE, seed: int = 19) -> list[float]:
    """``count`` finite doubles of random bit patterns: every exponent, subnormals, both signs."""
    draw = random.Random(seed)
    doubles: list[float] = []
    while len(doubles) < count:
        value = struct.unpack("<d", draw.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value):
            doubles.append(value)
    return doubles


def reads_exactly(read: Callable[[str], list], doubles: list[float]) -> bool:
    """Whether ``read`` (JSON array text → its numbers) gives back every double of ``doubles``,
    written as ``repr``, bit for bit; a reader that fails reads nothing exactly."""
    try:
        got = read("[" + ",".join(map(repr, doubles)) + "]")
    except Exception:  # noqa: BLE001 (no JSON support, or any other failure: not exact)
        return False
    return len(got) == len(doubles) and all(
        type(a) is float and struct.pack("<d", a) == struct.pack("<d", b) for a, b in zip(got, doubles))


def sqlite_reads_floats_exactly(conn: Connection) -> bool:
    """``reads_exactly`` for this process's SQLite JSON reader (``json_each``), asked once per
    process: the library does not change while it runs."""
    global _reads_exactly
    if _reads_exactly is None:
        _reads_exactly = reads_exactly(
            lambda text: [row[0] for row in conn.exec_driver_sql("SELECT value FROM json_each(?) ORDER BY key", (text,))],
            probe_doubles())
    return _reads_exactly


def insert_chunk(conn: Connection, run_id: int, chunk: bytes) -> None:
    """Insert the points of one run's complete lines, inside the caller's write transaction:
    through SQLite's JSON reader where that stores exactly what the driver path would (see the
    module's docstring), else parsed in Python. A run that takes no points (a finished one) makes
    both refuse, with the schema's error."""
    body = chunk.strip()
    if not body:
        return
    if not any(marker in body for marker in NOT_FAST) and sqlite_reads_floats_exactly(conn):
        before = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM metric_point").scalar()
        try:
            conn.exec_driver_sql(JSON_INSERT_SQL, (run_id, "[" + body.replace(b"\n", b",").decode() + "]"))
        except (UnicodeDecodeError, DBAPIError):  # a torn or foreign line (not UTF-8, malformed JSON, a
            pass  # missing key): the driver path says which lines it keeps, or raises the schema's refusal
        else:
            if not conn.exec_driver_sql(MISTYPED_SQL, (before, run_id)).scalar():
                return
            conn.exec_driver_sql("DELETE FROM metric_point WHERE id > ? AND run_id = ?", (before, run_id))
    rows = parse_points(body, run_id)
    if rows:
        conn.exec_driver_sql(INSERT_SQL, rows)


def write_chunks(store: Store, chunks: list[tuple[int, bytes]]) -> None:
    """Insert several runs' new lines (``(run_id, chunk)`` pairs) in one write transaction."""
    chunks = [(run_id, chunk) for run_id, chunk in chunks if chunk.strip()]
    if chunks:
        with store.begin_write() as conn:
            for run_id, chunk in chunks:
                insert_chunk(conn, run_id, chunk)
