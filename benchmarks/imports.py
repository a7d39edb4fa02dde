"""Importing an MLflow store: wall time and peak memory of `logbook import mlflow`.

Builds an MLflow SQLite store through the MLflow client (one ``log_batch`` per run: 1,000 steps of
``val_loss`` plus the arm and seed params; 4 arms), then imports it in a fresh process with
`logbook import mlflow ... --reduce min` (the whole history of every run is read and every point
stored as a learning curve) and reports the importer's wall time and peak resident memory
(``ru_maxrss`` of the child). Sizes: a quarter store and the full one, in one run of this
script, so the scaling is measured rather than assumed. A store once built is reused (its
folder is printed); pass --fresh to rebuild.

Run: .venv/bin/python benchmarks/imports.py [--runs 1000] [--steps 1000] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _record import record  # noqa: E402

ARMS = ("a0", "a1", "a2", "a3")


def build_store(path: Path, runs: int, steps: int) -> float:
    """An MLflow SQLite store with ``runs`` finished runs of ``steps`` points each; seconds taken."""
    import numpy as np
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    started = time.perf_counter()
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    experiment = client.create_experiment("bench")
    rng = np.random.default_rng(0)
    now = int(time.time() * 1000)
    for i in range(runs):
        arm, seed = ARMS[i % len(ARMS)], i // len(ARMS)
        run = client.create_run(experiment)
        curve = 1.0 + 0.01 * (i % len(ARMS)) + rng.normal(0, 0.01, steps).cumsum() / steps
        metrics = [Metric("val_loss", float(v), now + step, step) for step, v in enumerate(curve)]
        for start in range(0, steps, 1000):  # MLflow takes at most 1,000 metrics per batch
            params = [Param("model", arm), Param("seed", str(seed))] if start == 0 else []
            client.log_batch(run.info.run_id, metrics=metrics[start:start + 1000], params=params)
        client.set_terminated(run.info.run_id)
    return time.perf_counter() - started


MODES = {"curves": ["--reduce", "min"], "last values": ["--reduce", "last", "--no-curves"]}


def import_once(store: Path, workdir: Path, mode: str) -> tuple[float, float, float, dict]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one `logbook import` process."""
    db = workdir / "logbook.db"
    db.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), "init"], check=True, capture_output=True)
    argv = [sys.executable, "-m", "logbook", "--db", str(db), "import", "mlflow", f"sqlite:///{store}",
            "--experiment", "bench", "--arm-by", "params.model", "--seed-by", "params.seed", "--metric", "val_loss",
            *MODES[mode], "--baseline", "a0", "--delta", "0.005", "--lower-is-better", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"import failed: {out.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024, json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: import this store, print the figures
    parser.add_argument("--mode", default="curves", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = Path(tempfile.gettempdir()) / "logbook-bench-imports"
    folder.mkdir(exist_ok=True)
    if args.measure:
        wall, cpu, peak, result = import_once(Path(args.measure), folder, args.mode)
        print(json.dumps([wall, cpu, peak, result["added_runs"]]))
        return
    print(f"stores in {folder}")
    rows = []
    for runs in sorted({max(4, args.runs // 4), args.runs}):
        store = folder / f"mlflow-{runs}x{args.steps}.db"
        if args.fresh:
            store.unlink(missing_ok=True)
        built = None
        if not store.exists():
            partial = store.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            built = build_store(partial, runs, args.steps)
            partial.rename(store)
        # measured from a fresh child, so its children's ru_maxrss is this import's peak alone
        for mode in MODES:
            probe = subprocess.run([sys.executable, __file__, "--measure", str(store), "--mode", mode],
                                   capture_output=True, text=True, check=True)
            wall, cpu, peak, added = json.loads(probe.stdout.strip().splitlines()[-1])
            points = runs * args.steps
            rows.append([f"{runs:,}", f"{args.steps:,}", mode, f"{added:,}", f"{wall:.1f}", f"{cpu:.1f}",
                         f"{points / cpu:,.0f}", f"{peak:.0f}", "reused" if built is None else f"{built:.0f}"])
    record(
        "imports", "Importing an MLflow store (`logbook import mlflow`)",
        ["runs", "steps per run", "import", "runs imported", "wall (s)", "CPU (s)", "points / CPU s", "peak RSS (MiB)",
         "store build (s)"],
        rows,
        ["Goal: 1,000 runs × 1,000 steps in under a minute, streamed (one page of runs and one run's history at a time).",
         "The store is MLflow's SQLite backend, written with `MlflowClient.log_batch`; the import reads it through the",
         "MLflow client API (`search_runs` pages of 500, `get_metric_history` per run) and stores every point as a curve.",
         "\"curves\": `--reduce min`, every run's full history read and stored; \"last values\": `--reduce last --no-curves`,",
         "MLflow's latest value per run from the run listing, no history. Points / CPU s counts the store's points either way.",
         "CPU is user + system time of the import process: on a shared machine wall time moves with the load, CPU much less.",
         "Peak RSS is the importing process's (Python, MLflow, SQLAlchemy and the logbook included)."],
    )


if __name__ == "__main__":
    main()
