"""Metric ingest (engine/ingest.py): SQLite's JSON reader and the driver path store the same rows,
bit for bit, and the fast path is taken only where that is sure."""

from __future__ import annotations

import json
import math
import random
import sqlite3
import struct

import pytest
from sqlalchemy.exc import IntegrityError

from logbook.db.engine import open_store
from logbook.engine import ingest
from logbook.engine.child import FileReporter
from tests.conftest import make_entry

PARSE = ingest.parse_points  # the driver path's parser, kept before any test replaces it


@pytest.fixture
def runs(cli, db_path, tmp_path):
    """A logbook whose entry's runs are queued (they take points), and a store on it."""
    make_entry(cli, tmp_path)
    assert cli("run", "1", "--no-worker", "--yes").code == 0
    store = open_store(db_path, mode="write")
    run_ids = [row[0] for row in sqlite3.connect(db_path).execute("SELECT id FROM run ORDER BY id")]
    yield store, run_ids
    store.dispose()


def stored(store, run_id: int) -> list[tuple]:
    """A run's points in insertion order, with the values' bits (so -0.0, subnormals and 1-ulp
    differences count)."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT name, step, value FROM metric_point WHERE run_id = ? ORDER BY id",
                                    (run_id,)).all()
    return [(name, step, None if value is None else struct.pack("<d", value)) for name, step, value in rows]


def reporter_lines(tmp_path, points: list[tuple[int, str, float]]) -> bytes:
    """What a trainer's FileReporter writes for these (step, name, value) points."""
    folder = tmp_path / f"reporter{random.random()}"
    folder.mkdir()
    reporter = FileReporter(folder)
    for step, name, value in points:
        reporter.log(step, {name: value})
    reporter.close()
    return (folder / "metrics.jsonl").read_bytes()


def driver_rows(store, run_id: int, chunk: bytes) -> list[tuple]:
    """The reference: the chunk parsed by Python's json module and inserted through the driver."""
    with store.begin_write() as conn:
        conn.exec_driver_sql(ingest.INSERT_SQL, PARSE(chunk, run_id))
    return stored(store, run_id)


def no_python_rows(*args, **kwargs):
    raise AssertionError("the driver path was taken")


def test_this_sqlite_reads_json_numbers_exactly(runs):
    store, _ = runs
    with store.engine.connect() as conn:
        assert ingest.sqlite_reads_floats_exactly(conn), (
            f"SQLite {sqlite3.sqlite_version}'s JSON reader is not exact here: every point takes the driver path")


def test_the_fast_path_stores_what_the_driver_path_stores(runs, tmp_path, monkeypatch):
    store, (fast_run, driver_run, *_) = runs
    draw = random.Random(7)
    points = [(step, draw.choice(["loss", "val_loss", "acc/top-1"]), value) for step, value in enumerate(
        [struct.unpack("<d", draw.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(6000)]
        + [draw.gauss(0, 1e-3) for _ in range(2000)] + [1 / (s + 1) for s in range(2000)]
        + [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, 1e16, 3, -7])]
    points = [(step * 1_000_003, name, value) for step, name, value in points if math.isfinite(value)]
    chunk = reporter_lines(tmp_path, points)
    monkeypatch.setattr(ingest, "parse_points", no_python_rows)
    ingest.write_chunks(store, [(fast_run, chunk)])
    fast = stored(store, fast_run)
    assert len(fast) == len(points)
    assert fast == driver_rows(store, driver_run, chunk)
    # SQLite keeps an integral real as an integer, so -0.0 reads back as 0.0 on both paths (+ 0.0)
    assert fast == [(name, step, struct.pack("<d", float(value) + 0.0)) for step, name, value in points]


@pytest.mark.parametrize("points", [
    [(0, "loss", 0.5), (1, "loss", float("nan")), (2, "loss", 0.25)],
    [(0, "loss", float("inf")), (1, "loss", float("-inf"))],
    [(0, "précision", 0.5), (1, 'say "hi"', 0.25), (2, "emoji 😀", 1.0), (3, "back\\slash", 2.0)],
])
def test_non_finite_values_and_escaped_names_take_the_driver_path(runs, tmp_path, monkeypatch, points):
    store, (fast_run, driver_run, *_) = runs
    chunk = reporter_lines(tmp_path, points)
    calls = []
    monkeypatch.setattr(ingest, "parse_points", lambda *a: calls.append(a) or PARSE(*a))
    ingest.write_chunks(store, [(fast_run, chunk)])
    assert calls, "the chunk went the fast path"
    assert stored(store, fast_run) == driver_rows(store, driver_run, chunk)
    expected = [(name, step, None if math.isnan(value) else struct.pack("<d", value)) for step, name, value in points]
    assert stored(store, fast_run) == expected


@pytest.mark.parametrize("lines", [
    ['{"step": 0, "name": "loss", "value": 0.5}', '{"step": 1, "name": "loss", "val', '{"step": 2, "name": "loss", "value": 0.25}'],
    ['{"step": 0, "name": "loss", "value": 0.5}', b'{"step": 1, "name": "lo\xffss", "value": 0.5}', '{"step": 2, "name": "loss", "value": 0.25}'],
    ['{"step": 0, "name": "loss", "value": 0.5}', "", '{"step": 2, "name": "loss", "value": 0.25}'],
    ['{"step": 0, "name": "loss", "value": 0.5}', "garbage", '{"step": 2, "name": "loss", "value": 0.25}'],
    ['{"step": 0, "name": "loss"}', '{"step": 1, "name": "loss", "value": 0.5}'],
    ['{"step": 0, "value": 0.5}', '{"step": 1, "name": "loss", "value": 0.5}'],
    ['{"step": 1.5, "name": "loss", "value": 0.5}', '{"step": 2, "name": "loss", "value": 0.25}'],
    ['{"step": 1, "name": "loss", "value": "0.1"}', '{"step": 2, "name": "loss", "value": 0.25}'],
    ['{"step": 1, "name": "loss", "value": null}', '{"step": 2, "name": "loss", "value": 0.25}'],
    ['{"step": 1, "name": "loss", "value": [1]}', '{"step": 2, "name": "loss", "value": 0.25}'],
    ['{"step": 1, "name": 5, "value": 1}', '{"step": 2, "name": "loss", "value": 0.25}'],
])
def test_torn_or_foreign_lines_are_read_as_the_driver_path_reads_them(runs, lines):
    store, (fast_run, driver_run, *_) = runs
    chunk = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    ingest.write_chunks(store, [(fast_run, chunk)])
    assert stored(store, fast_run) == driver_rows(store, driver_run, chunk)
    assert len(stored(store, fast_run)) >= 1


def test_a_finished_run_takes_no_points_on_either_path(runs, tmp_path, db_path):
    store, (run_id, *_) = runs
    con = sqlite3.connect(db_path)
    con.execute("UPDATE run SET status = 'succeeded' WHERE id = ?", (run_id,))
    con.commit()
    con.close()
    for points in ([(0, "loss", 0.5)], [(0, "loss", float("nan"))]):  # the fast path, then the driver path
        with pytest.raises(IntegrityError, match="immutable"):
            ingest.write_chunks(store, [(run_id, reporter_lines(tmp_path, points))])
    assert stored(store, run_id) == []


def test_one_transaction_takes_several_runs_and_a_refusal_takes_none(runs, tmp_path, db_path):
    store, (first, second, third, *_) = runs
    chunk = reporter_lines(tmp_path, [(s, "loss", s / 7) for s in range(50)])
    ingest.write_chunks(store, [(first, chunk), (second, b""), (third, chunk)])
    assert len(stored(store, first)) == len(stored(store, third)) == 50 and stored(store, second) == []
    con = sqlite3.connect(db_path)
    con.execute("UPDATE run SET status = 'failed' WHERE id = ?", (third,))
    con.commit()
    con.close()
    with pytest.raises(IntegrityError):
        ingest.write_chunks(store, [(second, chunk), (third, chunk)])
    assert stored(store, second) == []


def test_the_probe_finds_a_reader_one_ulp_off():
    doubles = ingest.probe_doubles()
    assert ingest.reads_exactly(json.loads, doubles)
    off = [math.nextafter(v, math.inf) if i == 1234 else v for i, v in enumerate(doubles)]
    assert not ingest.reads_exactly(lambda text: off, doubles)
    assert not ingest.reads_exactly(lambda text: doubles[:-1], doubles)
    assert not ingest.reads_exactly(lambda text: [3], [3.0])  # an integer is not the double

    def no_json(text):
        raise sqlite3.OperationalError("no such table: json_each")

    assert not ingest.reads_exactly(no_json, doubles)


def test_an_inexact_sqlite_turns_the_fast_path_off(runs, tmp_path, monkeypatch):
    store, (fast_run, driver_run, *_) = runs
    monkeypatch.setattr(ingest, "_reads_exactly", None)
    monkeypatch.setattr(ingest, "reads_exactly", lambda read, doubles: False)
    calls = []
    monkeypatch.setattr(ingest, "parse_points", lambda *a: calls.append(a) or PARSE(*a))
    chunk = reporter_lines(tmp_path, [(s, "loss", s / 3) for s in range(10)])
    ingest.write_chunks(store, [(fast_run, chunk)])
    assert calls and ingest._reads_exactly is False
    assert stored(store, fast_run) == driver_rows(store, driver_run, chunk)
