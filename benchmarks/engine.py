"""Run-engine overheads, measured with real worker and child processes.

1. Launch overhead: 20 runs of a trainer that does nothing, one slot; the median time from the
   worker claiming a run to the run being recorded as ended (process start, imports, seeding,
   environment capture, result ingestion), and the queue's total wall time per run.
2. Metric-write overhead: the same training loop (fixed arithmetic per step) with and without
   one ``ctx.log`` per step, interleaved seeds, both arms in one run of this script; the ratio
   of the median trainer wall times (goal: at most 3% slower), for two step sizes.

Run: .venv/bin/python benchmarks/engine.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _record import record  # noqa: E402


def _migration(name: str):  # noqa: ANN202
    """A migration module of this checkout, loaded from its file (migrations/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, HERE.parent / "migrations" / "versions" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_POINT_TRIGGER = _migration("0012_point_trigger_speed")
TRIGGER_NAME, FINISHED_LIST_TRIGGER = _POINT_TRIGGER.NAME, _POINT_TRIGGER.FINISHED_LIST


def logbook(db: Path, *args: str, env: dict | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=True)
    return out.stdout


def entry(folder: Path, db: Path, name: str, trainer: str, arms: dict, seeds: int, metric: str = "score") -> str:
    lines = [f"title: {name}", "hypothesis: benchmark", f"metric: {metric}", "goal: maximize", "min_effect: 0",
             f"seeds: {seeds}", f"trainer: {trainer}", "arms:"]
    lines += [f"  {arm}: {json.dumps(cfg)}" for arm, cfg in arms.items()]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return json.loads(logbook(db, "new", str(path), "--register", "--json"))["slug"]


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


LAUNCH_CASES = {  # label -> (trainer line in the entry file, arm config)
    "module trainer that does nothing": ("bench_trainers:nothing", {}),
    # The command reports the entry's metric: a run without it fails (and would not be counted).
    "command trainer (`echo score=0`)": ('\n  command: "echo score=0"\n  metrics:\n    score: "score=([0-9.]+)"', {}),
    "built-in digits, 1 step": ("digits", {"steps": 1, "log_every": 1}),
}
METRICS = {"digits": "eval_acc"}  # the metric each case's trainer reports (a run without it fails)
LAUNCHERS = {"spawn": "new interpreter per run (old)", "fork": "pre-started launch server (new)"}


def launch_overhead(folder: Path, env: dict, seeds: int = 10, only: str | None = None) -> list[list[str]]:
    """2 × ``seeds`` runs on one slot per trainer and per launcher, back to back; spans from the database."""
    rows = []
    for i, (label, (trainer, config)) in enumerate(LAUNCH_CASES.items()):
        if only and only not in label:
            continue
        own = trainer_time(trainer, config)
        medians = {}
        for launcher in LAUNCHERS:
            db = folder / f"launch-{i}-{launcher}.db"
            slug = entry(folder, db, f"launch{i}{launcher}", trainer, {"a": config, "b": config}, seeds=seeds,
                         metric=METRICS.get(trainer, "score"))
            logbook(db, "run", slug, "--no-worker", "--yes")
            start = time.perf_counter()
            logbook(db, "worker", "--once", "--cpu-slots", "1", env={**env, "LOGBOOK_LAUNCHER": launcher})
            total = time.perf_counter() - start
            con = sqlite3.connect(db)
            spans = [(parse(e) - parse(s)).total_seconds() for s, e in con.execute(
                "SELECT started_at, ended_at FROM run WHERE status = 'succeeded'")]
            con.close()
            assert len(spans) == 2 * seeds, (label, launcher, spans)
            medians[launcher] = statistics.median(spans)
            rows.append([f"{label}: {LAUNCHERS[launcher]}", f"{2 * seeds} runs, 1 slot",
                         f"median {(medians[launcher] - own) * 1000:.0f} ms",
                         f"claim → recorded {medians[launcher] * 1000:.0f} ms (min {min(spans) * 1000:.0f});"
                         f" queue {total / (2 * seeds) * 1000:.0f} ms a run, worker start included"])
        rows.append([f"{label}: old ÷ new", "", f"{(medians['spawn'] - own) / max(medians['fork'] - own, 1e-3):.1f}×",
                     f"trainer's own work {own * 1000:.0f} ms (warm, in-process), subtracted above"])
    return rows


def trainer_time(trainer: str, config: dict) -> float:
    """The trainer's own wall time for one call in a warm interpreter (median of 5, after 2)."""
    from logbook.engine.child import FileReporter
    from logbook.engine.plugins import load_trainer
    from logbook.entries.seeding import derive_streams
    from trainers.protocol import RunContext

    from logbook.engine.executor import detect_gpus

    device = "cuda" if detect_gpus() else "cpu"  # where the worker's slot runs it
    spec = {"command": "echo score=0", "metrics": {"score": "score=([0-9.]+)"}} if "command" in trainer else {"name": trainer}
    call = load_trainer(spec)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(7):
            run_dir = Path(tmp) / str(rep)
            run_dir.mkdir()
            reporter = FileReporter(run_dir)
            ctx = RunContext(seed=rep, streams=derive_streams(rep), device=device, run_dir=run_dir, reporter=reporter,
                             options=spec)
            start = time.perf_counter()
            call(dict(config), ctx)
            if device == "cuda" and "torch" in sys.modules:
                sys.modules["torch"].cuda.synchronize()
            times.append(time.perf_counter() - start)
            reporter.close()
    return statistics.median(times[2:])


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--launch-only", action="store_true", help="measure run launch only")
    parser.add_argument("--ingest-only", action="store_true", help="measure metric ingest and live-curve latency only")
    parser.add_argument("--name", default="engine", help="results file name")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per arm in the launch entries (two arms)")
    parser.add_argument("--only", default=None, help="launch cases whose label contains this text")
    args = parser.parse_args()
    env = {"PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = [] if args.ingest_only else launch_overhead(folder, env, args.seeds, args.only)
        if not args.launch_only:
            rows += [] if args.ingest_only else loop_overhead(folder)
            rows += ingest_cost(folder)
            rows.append(live_latency(folder, env))
    from logbook.engine.executor import detect_gpus

    where = f"runs on GPU {detect_gpus()[0]} ({gpu_name()})" if detect_gpus() else "runs on CPU slots"
    record(args.name, f"Run-engine overheads ({where})", ["measure", "sample", "result", "detail"], rows,
           ["Goals: launch overhead per run at most 100 ms (median, the trainer's own work subtracted); one",
            "metric write per step costs at most 3% of a training loop. Launch: the same 20 runs through a",
            "worker that starts a new interpreter per run (LOGBOOK_LAUNCHER=spawn) and one that forks each",
            "run from a pre-started launch server (the default). The loop ratios come from one process",
            "alternating the two variants (A B A B ...), medians of 15 each, so machine noise hits both alike;",
            "the worker's ingestion runs in its own process, on another core.",
            "Command: .venv/bin/python benchmarks/engine.py " + " ".join(sys.argv[1:])])


def gpu_name() -> str:
    from logbook.entries.provenance import gpu_names

    return ", ".join(gpu_names()) or "unknown GPU"


def loop_overhead(folder: Path) -> list[list[str]]:
    """The training loop with and without ``ctx.log`` per step, through the real FileReporter."""
    from bench_trainers import busy

    from logbook.engine.child import FileReporter
    from trainers.protocol import RunContext

    rows = []
    for work, steps in ((11000, 1000), (1100, 3000)):
        times: dict[bool, list[float]] = {False: [], True: []}
        for rep in range(16):
            for report in (False, True):
                run_dir = folder / f"loop-{work}-{rep}-{report}"
                run_dir.mkdir()
                reporter = FileReporter(run_dir)
                ctx = RunContext(seed=rep, streams={}, device="cpu", run_dir=run_dir, reporter=reporter)
                start = time.perf_counter()
                busy({"report": report, "work": work, "steps": steps}, ctx)
                elapsed = time.perf_counter() - start
                reporter.close()
                if rep:  # the first pair warms up
                    times[report].append(elapsed)
        silent, logging = statistics.median(times[False]), statistics.median(times[True])
        rows.append([f"one metric written per step of {silent / steps * 1000:.2f} ms ({steps} steps)",
                     "15 × 2 alternating", f"{(logging / silent - 1) * 100:+.2f}%",
                     f"{(logging - silent) / steps * 1e6:.2f} µs a point"])
    return rows


def live_latency(folder: Path, env: dict) -> list[str]:
    """Ten runs log the wall clock every 20 ms for 2 s; this process polls the database every 10 ms
    and notes when each point becomes readable: the read-to-committed latency of a live curve."""
    db = folder / "live.db"
    slug = entry(folder, db, "live", "bench_trainers:clock", {"a": {"steps": 100, "every": 0.02}, "b": {"steps": 100, "every": 0.02}}, seeds=5)
    logbook(db, "run", slug, "--no-worker", "--yes")
    worker = subprocess.Popen([sys.executable, "-m", "logbook", "--db", str(db), "worker", "--once", "--cpu-slots", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    con = sqlite3.connect(db)
    seen: dict[tuple[int, int], float] = {}
    lags = []
    while worker.poll() is None:
        now = time.time()
        for run_id, step, value in con.execute("SELECT run_id, step, value FROM metric_point WHERE name = 't'"):
            if (run_id, step) not in seen:
                seen[(run_id, step)] = now
                lags.append(now - value)
        time.sleep(0.01)
    con.close()
    lags.sort()
    return ["live curve: logged → readable in the database (worker ingests every loop)", f"{len(lags)} points, 10 runs",
            f"median {statistics.median(lags) * 1000:.0f} ms", f"p90 {lags[int(0.9 * len(lags))] * 1000:.0f} ms,"
            f" max {lags[-1] * 1000:.0f} ms (goal ≤ 1 s)"]


def ingest_cost(folder: Path) -> list[list[str]]:
    """The worker's side: reading a metric stream and inserting the points, per point, four ways
    in one run of this script (interleaved): a json.loads per line and dict rows through
    SQLAlchemy (the first engine); one JSON array per read and tuples through executemany (the
    driver path, engine/ingest.py's fallback), under 0012's insert trigger and under 0008's; and
    SQLite's own JSON reader in one INSERT … SELECT (engine/ingest.py's fast path, the default)."""
    from sqlalchemy import insert

    from logbook.db.engine import open_store
    from logbook.db.models import MetricPoint
    from logbook.engine.child import FileReporter
    from logbook.engine.ingest import INSERT_SQL, parse_points, sqlite_reads_floats_exactly, write_chunks

    db = folder / "ingest.db"
    store = open_store(db)
    with store.begin_write() as conn:  # one entry, one arm and a run per variant and repetition
        conn.exec_driver_sql(
            "INSERT INTO hypothesis (id, slug, title, statement, metric, goal, alpha, seeds_per_arm, planned_seeds,"
            " trainer, baseline_arm, deterministic, tags, notes, status, source_text, created_at, updated_at)"
            " VALUES (1, 'i', 'i', 'h', 'loss', 'minimize', 0.05, 5, '[]', '{}', 'a', 0, '[]', '', 'running', '',"
            " '2026-01-01', '2026-01-01')")
        conn.exec_driver_sql("INSERT INTO arm (id, hypothesis_id, name, role, position, trainer, config, config_hash,"
                             " created_at, added_by_amendment) VALUES (1, 1, 'a', 'baseline', 0, '{}', '{}', 'x', '2026-01-01', 0)")
        conn.exec_driver_sql("INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, cancel_requested)"
                             " SELECT 1, value, 'planned', 'running', 1, '2026-01-01', 0 FROM json_each('[1,2,3,4,5,6,7,8,9,10,11,12]')")
        assert sqlite_reads_floats_exactly(conn), "this SQLite's JSON reader is not exact: the fast path is off"
    run_dir = folder / "ingest"
    run_dir.mkdir()
    reporter = FileReporter(run_dir)
    n = 200_000
    for step in range(n):
        reporter.log(step, {"loss": 1.0 / (step + 1)})
    reporter.close()

    path = run_dir / "metrics.jsonl"
    size = path.stat().st_size

    def chunks():  # noqa: ANN202 (as the worker reads a live run: 20 partial reads, complete lines only)
        offset, partial = 0, b""
        with open(path, "rb") as handle:
            for _ in range(20):
                handle.seek(offset)
                data = partial + handle.read(size // 20 + 1)
                offset = handle.tell()
                cut = data.rfind(b"\n") + 1
                partial = data[cut:]
                yield data[:cut]

    def old(run_id: int) -> None:
        for chunk in chunks():
            rows = []
            for line in chunk.split(b"\n"):
                if line.strip():
                    record = json.loads(line)
                    rows.append({"run_id": run_id, "name": str(record["name"]), "step": int(record["step"]),
                                 "value": float(record["value"])})
            if rows:
                with store.begin_write() as conn:
                    conn.execute(insert(MetricPoint), rows)

    def driver(run_id: int, into=store) -> None:  # noqa: ANN001
        for chunk in chunks():
            with into.begin_write() as conn:
                conn.exec_driver_sql(INSERT_SQL, parse_points(chunk, run_id))

    def new(run_id: int) -> None:
        for chunk in chunks():
            write_chunks(store, [(run_id, chunk)])

    # the driver path into a copy of the logbook whose insert trigger asks 0008's way (status IN
    # the five finished states, evaluated per point) instead of 0012's two comparisons
    listed_db = folder / "ingest-listed-trigger.db"
    store.dispose()
    shutil.copy(db, listed_db)
    with sqlite3.connect(listed_db) as con:
        con.execute(f"DROP TRIGGER {TRIGGER_NAME}")
        con.execute(FINISHED_LIST_TRIGGER)
    listed_store = open_store(listed_db)

    variants = {"old": old, "driver": driver, "listed": lambda run_id: driver(run_id, listed_store), "new": new}
    times: dict[str, list[float]] = {name: [] for name in variants}
    run_id = 1
    for _ in range(3):  # alternate, so machine noise hits all alike
        for name, variant in variants.items():
            start = time.perf_counter()
            variant(run_id)
            times[name].append(time.perf_counter() - start)
            run_id += 1
    for db_file in (db, listed_db):
        con = sqlite3.connect(db_file)
        counts = dict(con.execute("SELECT run_id, count(*) FROM metric_point GROUP BY run_id"))
        con.close()
        assert set(counts.values()) == {n}, counts
    con = sqlite3.connect(db)  # the fast path stored exactly what the driver path stored
    curves = [con.execute("SELECT name, step, value FROM metric_point WHERE run_id = ? ORDER BY id", (run,)).fetchall()
              for run in (2, 4)]
    con.close()
    assert curves[0] == curves[1]
    store.dispose()
    listed_store.dispose()
    rows = []
    for name, label in (("old", "per-line json.loads, dict rows through SQLAlchemy (first engine)"),
                        ("listed", "one JSON array per read, tuples through executemany, 0008's insert trigger"),
                        ("driver", "one JSON array per read, tuples through executemany, 0012's trigger (previous)"),
                        ("new", "SQLite's JSON reader, one INSERT … SELECT per read, 0012's trigger (new)")):
        best = statistics.median(times[name])
        rows.append([f"worker: read + insert metric points, {label}", f"{n:,} points × 3",
                     f"{n / best:,.0f} points/s", f"{best / n * 1e6:.2f} µs a point (median of 3)"])
    median = {name: statistics.median(t) for name, t in times.items()}
    rows.append(["ingest previous ÷ new", "", f"{median['driver'] / median['new']:.2f}×", ""])
    rows.append(["ingest first engine ÷ new", "", f"{median['old'] / median['new']:.2f}×", ""])
    rows.append(["ingest (previous path), 0008's trigger ÷ 0012's", "", f"{median['listed'] / median['driver']:.2f}×", ""])
    return rows


if __name__ == "__main__":
    main()
