"""The process that runs one trainer call: ``python -m logbook.engine.child JOB.json``.

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
from typing import Any, Mapping

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


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run the trainer for one job and return the outcome that goes into result.json."""
    from logbook.engine.plugins import TrainerNotFound, load_trainer
    from logbook.provenance import capture_environment
    from logbook.seeding import seed_everything
    from trainers.protocol import RunContext

    run_dir = Path(job["run_dir"])
    reporter = FileReporter(run_dir)
    started = time.time()
    outcome: dict[str, Any] = {"status": "failed", "error": None, "determinism": None}
    try:
        try:
            trainer = load_trainer(job["trainer"])
        except TrainerNotFound as exc:
            outcome["error"] = str(exc)
            return outcome
        determinism = seed_everything(int(job["seed"]), bool(job["deterministic"]))
        outcome["determinism"] = determinism
        torch = sys.modules.get("torch")
        if torch is not None and job.get("threads"):
            torch.set_num_threads(int(job["threads"]))
        ctx = RunContext(
            seed=int(job["seed"]), streams=determinism["streams"], device=job["device"], run_dir=run_dir,
            reporter=reporter, options=dict(job["trainer"]), deterministic=bool(job["deterministic"]),
            timeout=job.get("timeout"),
        )
        returned = trainer(dict(job["config"]), ctx)
        if isinstance(returned, Mapping):
            reporter.final(returned)
        if reporter.non_finite:
            outcome["status"] = "diverged"
            outcome["error"] = "non-finite values of: " + ", ".join(reporter.non_finite)
        else:
            outcome["status"] = "succeeded"
    except Exception:  # noqa: BLE001 (any trainer error ends this run as failed, with its traceback)
        outcome["error"] = traceback.format_exc()[-ERROR_TAIL_CHARS:]
        traceback.print_exc()
    finally:
        reporter.close()
        outcome["final_metrics"] = reporter.finals
        outcome["wall_time_s"] = time.time() - started
        if reporter.predictions:
            outcome["predictions_path"], outcome["predictions_sha256"] = reporter.predictions
        environment = capture_environment()
        write_json_atomically(run_dir / ENVIRONMENT_FILE, environment)
        packages = environment.pop("packages", {})
        environment["packages_sha256"] = hashlib.sha256(json.dumps(packages, sort_keys=True).encode()).hexdigest()
        outcome["environment"] = environment
    return outcome


def main(argv: list[str]) -> int:
    job_path = Path(argv[1])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    die_with_parent(int(job["worker_pid"]))
    outcome = run_job(job)
    write_json_atomically(Path(job["run_dir"]) / RESULT_FILE, outcome)
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
