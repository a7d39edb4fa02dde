"""Seed batching: seeds per second at K = 1, 8, 32 seeds trained at once, for each built-in trainer,
and the ratio of 32 batched seeds' wall time to one seed's (goal on CPU: at most 4).

Each measurement trains in this process with one thread per process (as a worker slot on a
2-core machine would), after one warm-up call; configs are the trainers' own, shortened to a
fixed number of steps so a row takes seconds. K = 1, 8 and 32 are measured in turn, ``--repeats``
times, and each figure is the median: on a shared machine a burst of load then hits every K alike.
Beside the wall-time ratio the table gives the ratio of CPU time (this process's), which load from
other processes distorts less. The digits CNN is also measured on its previous path (the model's
own forward under ``vmap``) so old and new are compared in one run. With a GPU
(CUDA_VISIBLE_DEVICES / torch.cuda) the same script measures on the GPU and says so.

Run: .venv/bin/python benchmarks/seed_batching.py [--device cuda] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

from logbook.entries.seeding import derive_streams  # noqa: E402
from trainers import digits, irreproducibility, seq_gating  # noqa: E402
from trainers.protocol import RunContext  # noqa: E402

CASES = {
    "seq-gating (gated, hidden 32, seq_len 20)": (seq_gating, {"cell": "gated", "steps": 150, "train_size": 1000, "val_size": 200}),
    "irreproducibility (smelu, width 64)": (irreproducibility, {"activation": "smelu", "steps": 300}),
    "digits (mlp 64, dropout 0.1)": (digits, {"model": "mlp", "steps": 300}),
    "digits (cnn 8 channels)": (digits, {"model": "cnn", "steps": 150}),
    "digits (cnn 8 channels, previous path: vmap)": (digits, {"model": "cnn", "steps": 150}),
}
SEEDS = (1, 8, 32)


def path_of(label: str) -> contextlib.AbstractContextManager:
    """The previous CNN path: no hand-batched forward, so SeedBatch vmaps the model's own."""
    return mock.patch.object(digits, "batched_cnn", None) if "previous path: vmap" in label else contextlib.nullcontext()


class Quiet:
    def log(self, step, metrics): pass
    def final(self, metrics): pass
    def save_predictions(self, predictions): pass


def timed(module, config, k: int, device: str) -> tuple[float, float]:
    """Wall time and this process's CPU time to train k seeds at once."""
    folder = Path(tempfile.mkdtemp())
    contexts = [RunContext(seed=s, streams=derive_streams(s), device=device, run_dir=folder, reporter=Quiet()) for s in range(k)]
    if device == "cuda":
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    module.train_batch(config, contexts)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default=None, help="results file name (default seed_batching_DEVICE)")
    parser.add_argument("--only", default=None, help="run only the cases whose label contains this text")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per K, interleaved; the median is kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device_name = (torch.cuda.get_device_name(0) if args.device == "cuda"
                   else f"CPU, {args.threads} thread(s), {len(os.sched_getaffinity(0))} core(s) usable")
    rows = []
    load_before = os.getloadavg()
    for label, (module, config) in CASES.items():
        if args.only and args.only not in label:
            continue
        with path_of(label):
            timed(module, config, 2, args.device)  # warm-up: imports, kernels, vmap tracing
            runs = [{k: timed(module, config, k, args.device) for k in SEEDS} for _ in range(args.repeats)]
        wall = {k: statistics.median(run[k][0] for run in runs) for k in SEEDS}
        cpu = {k: statistics.median(run[k][1] for run in runs) for k in SEEDS}
        rows.append([label, *(f"{k / wall[k]:.2f}" for k in SEEDS), f"{wall[1]:.2f} s", f"{wall[32]:.2f} s",
                     f"{wall[32] / wall[1]:.2f}", f"{cpu[32] / cpu[1]:.2f}"])
    load_after = os.getloadavg()
    record(
        args.name or f"seed_batching_{args.device}",
        f"Seed batching on {device_name}",
        ["trainer", "seeds/s K=1", "seeds/s K=8", "seeds/s K=32", "1 seed", "32 seeds batched", "ratio 32 : 1",
         "CPU-time ratio"],
        rows,
        ["Goal: ratio at most 4 on CPU (at most 2 on a GPU).",
         f"Medians of {args.repeats} interleaved repeats. Load average (1, 5, 15 min): "
         f"{', '.join(f'{x:.1f}' for x in load_before)} before, {', '.join(f'{x:.1f}' for x in load_after)} after.",
         f"Command: .venv/bin/python benchmarks/seed_batching.py {' '.join(sys.argv[1:])}"],
    )


if __name__ == "__main__":
    main()
