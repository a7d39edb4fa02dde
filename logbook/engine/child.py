"""The process that runs one trainer call: ``python -m logbook.engine.child JOB.json``.

A job is one run, or a batch of runs of one arm (different seeds) that a trainer with
``train_batch`` trains together in one call; each run keeps its own folder, reporter and result.

The worker starts it in a new session with the run's environment (CUDA_VISIBLE_DEVICES, thread
limits, PYTHONHASHSEED, CUBLAS_WORKSPACE_CONFIG) and its stdout/stderr going to the run's log.
It never touches the database: it streams metric points to ``metrics.jsonl`` and ends by writing
``result.json`` (atomically) with the outcome, which the worker reads. An exception in the
trainer, or a NaN/inf metric, ends the run with the right status and never the worker. If the
worker dies, the kernel sends this process SIGTERM (PR_SET_PDEATHSIG), so no run is left behind.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping

METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.npy"
ENVIRONMENT_FILE = "environment.json"
ERROR_TAIL_CHARS = 4000
FLUSH_SECONDS = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGTERM this process when its parent (the worker) dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(143)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers in glibc's malloc.h
HEAP_BELOW_BYTES = 32 << 20  # allocations under this come from the heap, not a fresh mmap each
TRIM_ABOVE_BYTES = 1 << 30  # free memory at the heap's top goes back to the kernel only past this


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory mapped for reuse, for the rest of this process.

    A training step frees and allocates the same large buffers every step (32 seeds of the digits
    CNN: dozens of 4 MiB activations and gradients). With glibc's adaptive defaults those go back
    to the kernel (munmap, or a trim of the heap's top) and the next step faults every page in
    again: about 2,300 minor page faults a step, and a sixth of a 32-seed run's wall time
    (``benchmarks/seed_batching.py``). Fixed thresholds keep them mapped; the price is that a run's
    resident memory stays at its peak until it ends. Results do not change: only where memory
    comes from does. Returns False (and changes nothing) where malloc is not glibc's.
    """
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):  # musl, macOS: other mallocs
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, HEAP_BELOW_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_ABOVE_BYTES))


class FileReporter:
    """Streams metric points as JSON lines and keeps the final values and predictions."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.handle = open(run_dir / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self.last_flush = time.monotonic()
        self.finals: dict[str, float] = {}
        self.non_finite: list[str] = []
        self.predictions: tuple[str, str] | None = None
        self._names: dict[str, str] = {}

    def _check(self, name: str, value: float) -> float:
        value = float(value)
        if not math.isfinite(value) and name not in self.non_finite:
            self.non_finite.append(str(name))
        return value

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        # Hand-formatted JSON: this is on the training loop's hot path (benchmarks/engine.py).
        step = int(step)
        write = self.handle.write
        for name, value in metrics.items():
            quoted = self._names.get(name)
            if quoted is None:
                quoted = self._names[name] = json.dumps(str(name))
            value = self._check(name, value)
            text = repr(value) if math.isfinite(value) else json.dumps(value)  # NaN, Infinity
            write(f'{{"step": {step}, "name": {quoted}, "value": {text}}}\n')
        now = time.monotonic()
        if now - self.last_flush >= FLUSH_SECONDS:
            self.handle.flush()
            self.last_flush = now

    def final(self, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            self.finals[str(name)] = self._check(name, value)

    def save_predictions(self, predictions: Any) -> None:
        import numpy as np

        if hasattr(predictions, "detach"):  # a torch tensor, possibly on a GPU
            predictions = predictions.detach().cpu().numpy()
        path = self.run_dir / PREDICTIONS_FILE
        np.save(path, np.asarray(predictions), allow_pickle=False)
        self.predictions = (str(path), hashlib.sha256(path.read_bytes()).hexdigest())

    def close(self) -> None:
        self.handle.flush()
        self.handle.close()


def write_json_atomically(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def run_job(job: dict[str, Any], capture: Callable[[], dict[str, Any]] | None = None) -> dict[int, dict[str, Any]]:
    """Run the trainer for every run of a job (one, or a batch trained together); returns each
    run's outcome, which goes into its own result.json. ``capture`` records the environment
    (``capture_environment`` unless a launch server supplies a cached one)."""
    from logbook.engine.plugins import TrainerNotFound, load_trainer
    from logbook.entries.provenance import capture_environment
    from logbook.entries.seeding import derive_streams, seed_everything
    from trainers.protocol import RunContext

    keep_freed_memory()
    if capture is None and job.get("gpus") is not None:  # the worker named this host's GPUs once for every run
        capture = lambda: {**capture_environment(gpus=False), "gpus": list(job["gpus"])}  # noqa: E731
    runs = job["runs"]
    reporters = {r["run_id"]: FileReporter(Path(r["run_dir"])) for r in runs}
    outcomes = {r["run_id"]: {"status": "failed", "error": None, "determinism": None} for r in runs}
    started = time.time()
    try:
        try:
            trainer = load_trainer(job["trainer"])
        except TrainerNotFound as exc:
            for outcome in outcomes.values():
                outcome["error"] = str(exc)
            return outcomes
        # A variance study's run gives its streams explicitly and, as "global", the seed the trainer
        # sees and the global generators get (the study's fixed seed when one source varies).
        given = {r["run_id"]: dict(r["streams"]) if r.get("streams") else None for r in runs}
        seeds = {r["run_id"]: int(given[r["run_id"]].pop("global", r["seed"])) if given[r["run_id"]] else int(r["seed"])
                 for r in runs}
        determinism = seed_everything(seeds[runs[0]["run_id"]], bool(job["deterministic"]))
        torch = sys.modules.get("torch")
        if torch is not None and job.get("threads"):
            torch.set_num_threads(int(job["threads"]))
        contexts = []
        for r in runs:
            streams = {k: int(v) for k, v in given[r["run_id"]].items()} if given[r["run_id"]] else derive_streams(int(r["seed"]))
            record = {**determinism, "seed": seeds[r["run_id"]], "streams": streams, "batch_size": len(runs)}
            outcomes[r["run_id"]]["determinism"] = record
            contexts.append(RunContext(
                seed=seeds[r["run_id"]], streams=record["streams"], device=job["device"], run_dir=Path(r["run_dir"]),
                reporter=reporters[r["run_id"]], options=dict(job["trainer"]), deterministic=bool(job["deterministic"]),
                timeout=job.get("timeout"),
            ))
        if len(contexts) == 1:
            returned = [trainer(dict(job["config"]), contexts[0])]
        else:
            returned = list(trainer.train_batch(dict(job["config"]), contexts))
        for r, value in zip(runs, returned):
            reporter = reporters[r["run_id"]]
            if isinstance(value, Mapping):
                reporter.final(value)
            outcome = outcomes[r["run_id"]]
            if reporter.non_finite:
                outcome["status"] = "diverged"
                outcome["error"] = "non-finite values of: " + ", ".join(reporter.non_finite)
            else:
                outcome["status"] = "succeeded"
    except Exception:  # noqa: BLE001 (any trainer error ends these runs as failed, with the traceback)
        error = traceback.format_exc()[-ERROR_TAIL_CHARS:]
        for outcome in outcomes.values():
            outcome["error"] = error
        traceback.print_exc()
    finally:
        elapsed = time.time() - started
        environment = (capture or capture_environment)()
        packages = environment.pop("packages", {})
        environment["packages_sha256"] = hashlib.sha256(json.dumps(packages, sort_keys=True).encode()).hexdigest()
        for r in runs:
            reporter, outcome = reporters[r["run_id"]], outcomes[r["run_id"]]
            reporter.close()
            outcome["final_metrics"] = reporter.finals
            outcome["wall_time_s"] = elapsed  # a batch's runs share one wall clock
            if reporter.predictions:
                outcome["predictions_path"], outcome["predictions_sha256"] = reporter.predictions
            write_json_atomically(Path(r["run_dir"]) / ENVIRONMENT_FILE, {**environment, "packages": packages})
            outcome["environment"] = environment
    return outcomes


def can_batch(trainer_spec: dict[str, Any]) -> bool:
    """Whether a trainer trains several seeds in one call (has ``train_batch``)."""
    from logbook.engine.plugins import TrainerNotFound, load_trainer

    try:
        return callable(getattr(load_trainer(trainer_spec), "train_batch", None))
    except TrainerNotFound:
        return False


def varies(trainer_spec: dict[str, Any]) -> list[str] | None:
    """The sources of randomness a trainer declares it can vary one at a time (its ``VARIES``), or
    None when it cannot be loaded."""
    from logbook.engine.plugins import TrainerNotFound, load_trainer
    from trainers.protocol import declared_sources

    try:
        return sorted(declared_sources(load_trainer(trainer_spec), trainer_spec))
    except TrainerNotFound:
        return None


def main(argv: list[str]) -> int:
    if argv[1] == "--probe":  # asked by the worker, which never imports trainers itself
        spec = json.loads(argv[2])
        print(json.dumps({"batch": can_batch(spec), "varies": varies(spec)}))
        return 0
    job_path = Path(argv[1])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    die_with_parent(int(os.environ.get("LOGBOOK_PARENT_PID") or job["worker_pid"]))  # set by a Slurm task
    outcomes = run_job(job)
    for r in job["runs"]:
        write_json_atomically(Path(r["run_dir"]) / RESULT_FILE, outcomes[r["run_id"]])
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
