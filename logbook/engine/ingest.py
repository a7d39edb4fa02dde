"""Moving metric points from a run's ``metrics.jsonl`` into the database, fast.

The worker reads what each running run appended since its last look and inserts it in one
transaction per loop (every ``poll_s``), so a live curve is in the database well within a second
of the trainer's flush. The cost per point is what limits a logbook fed by many runs logging
every step, so both halves avoid per-point Python work:

- parsing: the complete lines read are parsed as *one* JSON array (one call into the C decoder
  instead of one per line); only if that fails (a torn or foreign line) is each line parsed on
  its own and the bad ones skipped;
- writing: plain tuples through the driver's ``executemany``, not ORM objects or dicts.

Non-finite values travel as JSON ``NaN``/``Infinity`` and are stored as NULL by SQLite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from logbook.db.engine import Store

INSERT_SQL = "INSERT INTO metric_point (run_id, name, step, value) VALUES (?, ?, ?, ?)"
Point = tuple  # (run_id, name, step, value)


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


def read_points(stream: PointStream, run_id: int) -> list[Point]:
    return parse_points(read_chunk(stream), run_id)


def write_points(store: Store, rows: list[Point]) -> None:
    """Insert the rows in one write transaction."""
    if rows:
        with store.begin_write() as conn:
            conn.exec_driver_sql(INSERT_SQL, rows)
