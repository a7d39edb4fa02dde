"""Seed batching: seeds per second at K = 1, 8, 32 seeds trained at once, for each built-in trainer,
and the ratio of 32 batched seeds' wall time to one seed's (goal on CPU: at most 4).

Each measurement trains K seeds in a fresh interpreter, as the engine trains a batch in a
fresh run process, with one thread (as a worker slot on a 2-core machine would), after one small
warm-up call (K = 2); configs are the trainers' own, shortened to a fixed number of steps so a
row takes seconds. K = 1, 8 and 32 are measured in turn, ``--repeats`` times, and each figure is
the median: on a shared machine a burst of load then hits every K alike. Beside the wall-time
ratio the table gives the ratio of CPU time (the measuring process's), which load from other
processes distorts less.

Each K is measured twice, interleaved: with malloc set up as a run's process sets it
(``child.keep_freed_memory``) and, as the previous path, with glibc's defaults. The process must
be fresh for that comparison: glibc's defaults adapt as a process frees large blocks, so a
process that has already trained pays less than a run's process does. With a GPU
(CUDA_VISIBLE_DEVICES / torch.cuda) the same script measures on the GPU and says so.

Run: .venv/bin/python benchmarks/seed_batching.py [--device cuda] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

from logbook.engine.child import keep_freed_memory  # noqa: E402
from logbook.entries.seeding import derive_streams  # noqa: E402
from trainers import digits, irreproducibility, seq_gating  # noqa: E402
from trainers.protocol import RunContext  # noqa: E402

CASES = {
    "seq-gating (gated, hidden 32, seq_len 20)": (seq_gating, {"cell": "gated", "steps": 150, "train_size": 1000, "val_size": 200}),
    "irreproducibility (smelu, width 64)": (irreproducibility, {"activation": "smelu", "steps": 300}),
    "digits (mlp 64, dropout 0.1)": (digits, {"model": "mlp", "steps": 300}),
    "digits (cnn 8 channels)": (digits, {"model": "cnn", "steps": 150}),
}
SEEDS = (1, 8, 32)


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


ALLOCATORS = ("engine", "glibc default")


def timed_elsewhere(label: str, k: int, allocator: str, args: argparse.Namespace) -> tuple[float, float]:
    """``timed`` in a fresh interpreter, after a warm-up call, with malloc set up as named."""
    command = [sys.executable, __file__, "--device", args.device, "--threads", str(args.threads),
               "--measure", json.dumps([label, k, allocator])]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall, cpu = json.loads(done.stdout.splitlines()[-1])
    return wall, cpu


def measure(spec: str, device: str) -> None:
    """The fresh interpreter's part: print the wall and CPU time of one measurement as JSON."""
    label, k, allocator = json.loads(spec)
    if allocator == "engine":
        keep_freed_memory()
    module, config = CASES[label]
    timed(module, config, 2, device)  # warm-up: imports, kernels, vmap tracing
    print(json.dumps(timed(module, config, k, device)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default=None, help="results file name (default seed_batching_DEVICE)")
    parser.add_argument("--only", default=None, help="run only the cases whose label contains this text")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per K, interleaved; the median is kept")
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # one measurement, in a subprocess
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.measure:
        measure(args.measure, args.device)
        return
    device_name = (torch.cuda.get_device_name(0) if args.device == "cuda"
                   else f"CPU, {args.threads} thread(s), {len(os.sched_getaffinity(0))} core(s) usable")
    rows = []
    load_before = os.getloadavg()
    for label in CASES:
        if args.only and args.only not in label:
            continue
        runs = [{(k, a): timed_elsewhere(label, k, a, args) for k in SEEDS for a in ALLOCATORS}
                for _ in range(args.repeats)]
        wall = {key: statistics.median(run[key][0] for run in runs) for key in runs[0]}
        cpu = {key: statistics.median(run[key][1] for run in runs) for key in runs[0]}
        new, old = ALLOCATORS
        rows.append([label, *(f"{k / wall[k, new]:.2f}" for k in SEEDS), f"{wall[1, new]:.2f} s",
                     f"{wall[32, new]:.2f} s", f"{wall[32, new] / wall[1, new]:.2f}", f"{cpu[32, new] / cpu[1, new]:.2f}",
                     f"{wall[32, old]:.2f} s", f"{wall[32, old] / wall[1, old]:.2f}", f"{cpu[32, old] / cpu[1, old]:.2f}"])
    load_after = os.getloadavg()
    record(
        args.name or f"seed_batching_{args.device}",
        f"Seed batching on {device_name}",
        ["trainer", "seeds/s K=1", "seeds/s K=8", "seeds/s K=32", "1 seed", "32 seeds batched", "ratio 32 : 1",
         "CPU-time ratio", "previous: 32 seeds", "previous: ratio", "previous: CPU-time ratio"],
        rows,
        ["Goal: ratio at most 4 on CPU (at most 2 on a GPU).",
         "Each figure from a fresh interpreter, as a run's process is. Previous: glibc's default malloc, "
         "without `keep_freed_memory`, measured interleaved with the current path.",
         f"Medians of {args.repeats} interleaved repeats. Load average (1, 5, 15 min): "
         f"{', '.join(f'{x:.1f}' for x in load_before)} before, {', '.join(f'{x:.1f}' for x in load_after)} after.",
         f"Command: .venv/bin/python benchmarks/seed_batching.py {' '.join(sys.argv[1:])}"],
    )


if __name__ == "__main__":
    main()
