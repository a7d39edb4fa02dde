"""What one Slurm array task runs on its node (submitit pickles ``run_task`` and calls it there).

It starts the same child process as the local executor (``python -m logbook.engine.child``),
with the run's environment and its output appended to the run's log, so a run behaves the same
wherever it executes. Before that it clears what an earlier start of this task left (Slurm may
requeue a task under the same job id), and it writes ``slurm.json`` into each run folder: job id,
array index, node and GPU model, which the worker adds to the run's provenance.

Only the standard library here: this module is imported on the compute node.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

SLURM_FILE = "slurm.json"
STALE_FILES = ("metrics.jsonl", "result.json", "predictions.npy", SLURM_FILE)


def gpu_models() -> list[str]:
    """Names of the GPUs this task may use, as nvidia-smi reports them (none without one)."""
    exe = shutil.which("nvidia-smi")
    if exe is None or os.environ.get("CUDA_VISIBLE_DEVICES", "") in ("", "-1"):
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def placement() -> dict:
    env = os.environ
    return {
        "job_id": env.get("SLURM_ARRAY_JOB_ID") or env.get("SLURM_JOB_ID"),
        "array_index": int(env["SLURM_ARRAY_TASK_ID"]) if env.get("SLURM_ARRAY_TASK_ID") else None,
        "node": socket.gethostname(),
        "restart_count": int(env.get("SLURM_RESTART_COUNT") or 0),
        "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
        "gpu_models": gpu_models(),
    }


def run_task(job_file: str, log_path: str, env: dict[str, str], cwd: str | None) -> int:
    """Run one job (one run or a batch) through the child process; returns its exit code."""
    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    where = placement()
    for run in job["runs"]:
        run_dir = Path(run["run_dir"])
        for name in STALE_FILES:
            (run_dir / name).unlink(missing_ok=True)
        (run_dir / SLURM_FILE).write_text(json.dumps(where, indent=1, sort_keys=True), encoding="utf-8")
    threads = os.environ.get("SLURM_CPUS_PER_TASK") or "1"
    child_env = {
        **os.environ, **env, "LOGBOOK_PARENT_PID": str(os.getpid()), "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
    }
    with open(log_path, "ab") as log:
        log.write(f"--- slurm job {where['job_id']} task {where['array_index']} on {where['node']}"
                  f" (start {where['restart_count'] + 1})\n".encode())
        log.flush()
        return subprocess.call(
            [sys.executable, "-m", "logbook.engine.child", job_file], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=child_env, cwd=cwd if cwd and Path(cwd).is_dir() else None,
        )
