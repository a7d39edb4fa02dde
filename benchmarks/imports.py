"""Importing an MLflow store: wall time, CPU time and peak memory of `logbook import mlflow`.

The store is written by the MLflow library itself, in two steps that keep building it affordable:
several builder processes each log a slice of the runs through ``MlflowClient.log_batch`` into
one file store (runs are separate folders there, so the slices do not contend), then MLflow's own
``migrate-filestore`` (``mlflow.store.fs2db.migrate``) turns that file store into a SQLite store.
Every run logs 1,000 steps of ``val_loss`` plus its arm and seed params; 4 arms.

Each import runs in a fresh process (`logbook import mlflow ... --json` into a new logbook) and is
measured as wall time, CPU time (user + system) and peak resident memory (``ru_maxrss``). Modes:

- "per-run history": the previous path, one ``get_metric_history`` call per run (``--reduce min``).
  Only on the quarter-size store: each call searches the metric's rows of every run, so it grows
  with the square of the store (815 s for 1,000 runs when last measured).
- "curves": one bulk history call per chunk of runs (``--reduce min``), read in the importing
  process (``LOGBOOK_IMPORT_WORKERS=1``), on both.
- "curves, N reader processes": the same calls made by N worker processes (N = ``min(CPUs, 4)``; by
  default an import of 200 runs or more starts one per idle core), on the full-size store.
- "last values": ``--reduce last --no-curves``, MLflow's latest value per run from the run listing.
- "curves, file store": per-run history calls on the file store the SQLite one was migrated from,
  in the importing process; "curves, file store, N reader processes": the same in N workers.
The last ones on the full-size store only. CPU time includes the reader processes' (they are the
import process's children, joined before it exits).

Stores are kept in a temporary folder and reused (with their build time); --fresh rebuilds them.

Run: .venv/bin/python benchmarks/imports.py [--runs 1000] [--steps 1000] [--builders 2] [--fresh] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _record import record  # noqa: E402

ARMS = ("a0", "a1", "a2", "a3")
EXPERIMENT = "bench"


def _file_store_env() -> dict[str, str]:
    return {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}


def build_slice(root: Path, first: int, last: int, steps: int) -> None:
    """Runs ``first`` .. ``last - 1`` of the store, logged through the MLflow client into the file store."""
    import numpy as np
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=root.as_uri())
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    now = int(time.time() * 1000)
    for i in range(first, last):
        arm, seed = ARMS[i % len(ARMS)], i // len(ARMS)
        rng = np.random.default_rng(i)
        curve = 1.0 + 0.01 * (i % len(ARMS)) + rng.normal(0, 0.01, steps).cumsum() / steps
        metrics = [Metric("val_loss", float(v), now + step, step) for step, v in enumerate(curve)]
        run = client.create_run(experiment, start_time=now + i)
        for start in range(0, steps, 1000):  # MLflow takes at most 1,000 metrics per batch
            params = [Param("model", arm), Param("seed", str(seed))] if start == 0 else []
            client.log_batch(run.info.run_id, metrics=metrics[start:start + 1000], params=params)
        client.set_terminated(run.info.run_id)


def build_store(db: Path, runs: int, steps: int, builders: int) -> dict[str, float]:
    """A file store filled by ``builders`` processes, then migrated to the SQLite store ``db`` by MLflow.
    Returns the wall and CPU seconds taken (this process and its builders together)."""
    from mlflow.store.fs2db import migrate
    from mlflow.tracking import MlflowClient

    files = db.with_suffix(".mlruns")
    shutil.rmtree(files, ignore_errors=True)
    db.unlink(missing_ok=True)
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    wall, cpu, children = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    MlflowClient(tracking_uri=files.as_uri()).create_experiment(EXPERIMENT)
    bounds = [runs * k // builders for k in range(builders + 1)]
    procs = [subprocess.Popen([sys.executable, __file__, "--build-slice", str(files), str(a), str(b), str(steps)],
                              env=_file_store_env()) for a, b in zip(bounds, bounds[1:]) if b > a]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a builder process failed")
    migrate(files, f"sqlite:///{db}", progress=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    built = {"wall": time.perf_counter() - wall,
             "cpu": time.process_time() - cpu + after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime,
             "builders": builders}
    db.with_suffix(".json").write_text(json.dumps(built))
    return built


WORKERS = min(os.cpu_count() or 1, 4)  # what an import of this size uses by default
PARALLEL = f"curves, {WORKERS} reader processes"
MODES = {
    "per-run history": ["--reduce", "min"],
    "curves": ["--reduce", "min"],
    PARALLEL: ["--reduce", "min"],
    "last values": ["--reduce", "last", "--no-curves"],
    "curves, file store": ["--reduce", "min"],
    f"curves, file store, {WORKERS} reader processes": ["--reduce", "min"],
}
# the import process: the logbook CLI, with the bulk history call switched off for the previous path
LAUNCH = "import sys; from logbook.importers import from_mlflow; from_mlflow.BULK = sys.argv.pop(1) == 'bulk'; " \
         "from logbook.cli import main; main()"


def _autogroup() -> bool:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return False


# why reader processes can lose wall time on a loaded machine, where that is the case
AUTOGROUP_NOTE = ["The kernel shares CPU between sessions here (`sched_autogroup_enabled` = 1): an import and its "
                  "reader processes share one session's slice, so under other sessions' load the readers add their "
                  "start-up CPU without getting more of the cores; they shorten wall time only where cores are idle."
                  ] if _autogroup() else []


def import_once(store: Path, workdir: Path, mode: str) -> tuple[float, float, float, dict]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one `logbook import` process."""
    db = workdir / "logbook.db"
    db.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), "init"], check=True, capture_output=True)
    location = store.with_suffix(".mlruns").as_uri() if "file store" in mode else f"sqlite:///{store}"
    env = _file_store_env()
    env.pop("LOGBOOK_IMPORT_PARALLEL_MIN_RUNS", None)
    env["LOGBOOK_IMPORT_WORKERS"] = str(WORKERS) if "reader processes" in mode else "1"
    argv = [sys.executable, "-c", LAUNCH, "per-run" if mode == "per-run history" else "bulk",
            "--db", str(db), "import", "mlflow", location,
            "--experiment", EXPERIMENT, "--arm-by", "params.model", "--seed-by", "params.seed", "--metric", "val_loss",
            *MODES[mode], "--baseline", "a0", "--delta", "0.005", "--lower-is-better", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
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
    parser.add_argument("--builders", type=int, default=2, help="processes writing the file store")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="imports per mode (median shown, with the range)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: import this store, print the figures
    parser.add_argument("--mode", default="curves", help=argparse.SUPPRESS)
    parser.add_argument("--build-slice", nargs=4, help=argparse.SUPPRESS)  # internal: ROOT FIRST LAST STEPS
    args = parser.parse_args()
    if args.build_slice:
        root, first, last, steps = args.build_slice
        build_slice(Path(root), int(first), int(last), int(steps))
        return
    folder = Path(tempfile.gettempdir()) / "logbook-bench-imports"
    folder.mkdir(exist_ok=True)
    if args.measure:
        wall, cpu, peak, result = import_once(Path(args.measure), folder, args.mode)
        print(json.dumps([wall, cpu, peak, result["added_runs"]]))
        return
    print(f"stores in {folder}")
    load = os.getloadavg()
    started = time.strftime("%H:%M", time.gmtime())
    rows = []
    quarter = max(8, args.runs // 4)  # at least 2 seeds per arm
    for runs in sorted({quarter, args.runs}):
        store = folder / f"mlflow-{runs}x{args.steps}.db"
        sidecar = store.with_suffix(".json")
        if args.fresh or not store.exists() or not sidecar.exists():
            built = build_store(store, runs, args.steps, args.builders)
        else:
            built = json.loads(sidecar.read_text())
        # the previous path only where it is affordable; the rest at full size (the machine is shared)
        modes = (["per-run history", "curves"] if runs == quarter else
                 ["curves", PARALLEL, "last values", "curves, file store", f"curves, file store, {WORKERS} reader processes"])
        for mode in modes:
            before = os.getloadavg()[0]
            measured = []
            for _ in range(args.repeat):
                # measured from a fresh child, so its children's ru_maxrss is this import's peak alone
                probe = subprocess.run([sys.executable, __file__, "--measure", str(store), "--mode", mode],
                                       capture_output=True, text=True)
                if probe.returncode != 0:
                    raise SystemExit(probe.stdout[-1000:] + probe.stderr[-2000:])
                measured.append(json.loads(probe.stdout.strip().splitlines()[-1]))
            walls, cpus = [m[0] for m in measured], [m[1] for m in measured]
            wall, cpu, peak, added = statistics.median(walls), statistics.median(cpus), max(m[2] for m in measured), measured[0][3]
            spread = (lambda xs: f" ({min(xs):.1f}–{max(xs):.1f})") if args.repeat > 1 else (lambda xs: "")
            points = runs * args.steps
            rows.append([f"{runs:,}", f"{args.steps:,}", mode, f"{added:,}", f"{wall:.1f}{spread(walls)}",
                         f"{cpu:.1f}{spread(cpus)}", f"{points / cpu:,.0f}", f"{peak:.0f}", f"{before:.1f}",
                         f"{built['wall']:.0f} / {built['cpu']:.0f} ({built['builders']} builders)"])
    end = os.getloadavg()
    record(
        "imports", "Importing an MLflow store (`logbook import mlflow`)",
        ["runs", "steps per run", "import", "runs imported", "wall (s)", "CPU (s)", "points / CPU s", "peak RSS (MiB)",
         "load before", "store build wall / CPU (s)"],
        rows,
        ["Goal: 1,000 runs × 1,000 steps in under a minute, streamed (bounded memory).",
         f"Load average (`uptime`) at the start ({started} UTC): {load[0]:.1f} (1 min), {load[1]:.1f} (5 min); at the end: "
         f"{end[0]:.1f}, {end[1]:.1f}, on this shared {os.cpu_count()}-core machine. CPU seconds are the honest figure "
         "for the work done; wall time moves with the load (reader processes compete with everything else for the cores).",
         "The store is written by the MLflow library: builder processes log runs with `MlflowClient.log_batch` into a",
         "file store, then `mlflow.store.fs2db.migrate` (MLflow's `migrate-filestore`) writes the SQLite store.",
         "\"per-run history\": the previous path, `get_metric_history` per run, measured on the quarter store only",
         "(each call searches the metric's rows of every run: quadratic in the store's size).",
         "\"curves\": `--reduce min`, one `get_metric_history_bulk` call per 50 runs, in the importing process "
         "(`LOGBOOK_IMPORT_WORKERS=1`); every point stored.",
         f"\"{PARALLEL}\": the same calls made by {WORKERS} worker processes (by default an import of 200 runs or more starts one per idle core: "
         "CPUs less the one-minute load average), "
         "each with its own MLflow client, sending back arrays; at most two chunks per worker in flight.",
         "\"last values\": `--reduce last --no-curves`, MLflow's latest value per run from the run listing, no history.",
         "\"curves, file store\": the file store, asked per run (linear there), in the importing process; "
         "with reader processes: the same calls in the workers.",
         "Points / CPU s counts the store's points in every mode. CPU is user + system time of the import process "
         "and its reader processes together.",
         f"Each mode imported {args.repeat} time(s), one after another: the median, with the range in brackets; "
         "peak RSS the largest.",
         "Load before: the one-minute load average as the import started (the previous import's CPU is still in it).",
         "Peak RSS is the largest single process's (the importing process: Python, MLflow, SQLAlchemy and the logbook "
         "included); each reader process holds its own MLflow as well.",
         "Store build: wall and CPU seconds of building that store (builders and migration), possibly in an earlier run.",
         *AUTOGROUP_NOTE,
         "Command: .venv/bin/python benchmarks/imports.py " + " ".join(sys.argv[1:])],
    )


if __name__ == "__main__":
    main()
