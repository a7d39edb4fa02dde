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

import json
import os
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


def logbook(db: Path, *args: str, env: dict | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=True)
    return out.stdout


def entry(folder: Path, db: Path, name: str, trainer: str, arms: dict, seeds: int) -> str:
    lines = [f"title: {name}", "hypothesis: benchmark", "metric: score", "goal: maximize", "min_effect: 0",
             f"seeds: {seeds}", f"trainer: {trainer}", "arms:"]
    lines += [f"  {arm}: {json.dumps(cfg)}" for arm, cfg in arms.items()]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return json.loads(logbook(db, "new", str(path), "--register", "--json"))["slug"]


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


LAUNCH_CASES = {  # label -> (trainer line in the entry file, arm config)
    "module trainer that does nothing": ("bench_trainers:nothing", {}),
    "command trainer (`true`)": ('\n  command: "true"', {}),
    "built-in digits, 1 step": ("digits", {"steps": 1, "log_every": 1}),
}
LAUNCHERS = {"spawn": "new interpreter per run (old)", "fork": "pre-started launch server (new)"}


def launch_overhead(folder: Path, env: dict) -> list[list[str]]:
    """20 runs on one slot per trainer and per launcher, back to back; spans from the database."""
    rows = []
    for i, (label, (trainer, config)) in enumerate(LAUNCH_CASES.items()):
        own = trainer_time(trainer, config)
        medians = {}
        for launcher in LAUNCHERS:
            db = folder / f"launch-{i}-{launcher}.db"
            slug = entry(folder, db, f"launch{i}{launcher}", trainer, {"a": config, "b": config}, seeds=10)
            logbook(db, "run", slug, "--no-worker")
            start = time.perf_counter()
            logbook(db, "worker", "--once", "--cpu-slots", "1", env={**env, "LOGBOOK_LAUNCHER": launcher})
            total = time.perf_counter() - start
            con = sqlite3.connect(db)
            spans = [(parse(e) - parse(s)).total_seconds() for s, e in con.execute(
                "SELECT started_at, ended_at FROM run WHERE status = 'succeeded'")]
            con.close()
            assert len(spans) == 20, (label, launcher, spans)
            medians[launcher] = statistics.median(spans)
            rows.append([f"{label}: {LAUNCHERS[launcher]}", "20 runs, 1 slot",
                         f"median {(medians[launcher] - own) * 1000:.0f} ms",
                         f"claim → recorded {medians[launcher] * 1000:.0f} ms (min {min(spans) * 1000:.0f});"
                         f" queue {total / 20 * 1000:.0f} ms a run, worker start included"])
        rows.append([f"{label}: old ÷ new", "", f"{(medians['spawn'] - own) / max(medians['fork'] - own, 1e-3):.1f}×",
                     f"trainer's own work {own * 1000:.0f} ms (warm, in-process), subtracted above"])
    return rows


def trainer_time(trainer: str, config: dict) -> float:
    """The trainer's own wall time for one call in a warm interpreter (median of 5, after 2)."""
    from logbook.engine.child import FileReporter
    from logbook.engine.plugins import load_trainer
    from logbook.seeding import derive_streams
    from trainers.protocol import RunContext

    spec = {"command": "true"} if "command" in trainer else {"name": trainer}
    call = load_trainer(spec)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(7):
            run_dir = Path(tmp) / str(rep)
            run_dir.mkdir()
            reporter = FileReporter(run_dir)
            ctx = RunContext(seed=rep, streams=derive_streams(rep), device="cpu", run_dir=run_dir, reporter=reporter,
                             options=spec)
            start = time.perf_counter()
            call(dict(config), ctx)
            times.append(time.perf_counter() - start)
            reporter.close()
    return statistics.median(times[2:])


def main() -> None:
    env = {"PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = launch_overhead(folder, env)
        rows += loop_overhead(folder)
        rows.append(ingest_cost(folder))
    record("engine", "Run-engine overheads", ["measure", "sample", "result", "detail"], rows,
           ["Goals: launch overhead per run at most 100 ms (median, the trainer's own work subtracted); one",
            "metric write per step costs at most 3% of a training loop. Launch: the same 20 runs through a",
            "worker that starts a new interpreter per run (LOGBOOK_LAUNCHER=spawn) and one that forks each",
            "run from a pre-started launch server (the default). The loop ratios come from one process",
            "alternating the two variants (A B A B ...), medians of 15 each, so machine noise hits both alike;",
            "the worker's ingestion runs in its own process, on another core.",
            "Command: .venv/bin/python benchmarks/engine.py"])


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


def ingest_cost(folder: Path) -> list[str]:
    """The worker's side: reading a metric stream and inserting the points, per point."""
    from logbook.db.engine import open_store
    from logbook.engine.child import FileReporter
    from logbook.engine.worker import _Stream, insert_points, read_new_points

    store = open_store(folder / "bench.db")
    run_dir = folder / "ingest"
    run_dir.mkdir()
    reporter = FileReporter(run_dir)
    n = 200_000
    for step in range(n):
        reporter.log(step, {"loss": 1.0 / (step + 1)})
    reporter.close()
    con = sqlite3.connect(folder / "bench.db")
    run_id = con.execute("SELECT max(id) FROM run").fetchone()[0]
    con.close()
    start = time.perf_counter()
    stream = _Stream(run_dir / "metrics.jsonl")
    for _ in range(20):  # as the worker does: several partial reads while the run goes on
        insert_points(store, read_new_points(stream, run_id))
    elapsed = time.perf_counter() - start
    store.dispose()
    return ["worker: read + insert metric points (batched, WAL)", f"{n} points", f"{elapsed / n * 1e6:.2f} µs a point",
            f"{n / elapsed:,.0f} points/s"]


if __name__ == "__main__":
    main()
