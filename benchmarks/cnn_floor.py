"""The digits CNN's seed-batching floor on this CPU: how fast 32 batched seeds would have to compute
for the 32 : 1 wall-time ratio to reach 4, against how fast this machine and PyTorch's kernels
compute at the CNN's shapes.

One training step (forward, backward, Adam) of the trainer's own batched CNN (``batched_cnn``,
8 channels, batch 64) is timed at K = 1 and K = 32 seeds: the median of ``--steps`` steps after
warm-up, in this process, with malloc set up as a run's process sets it. Its matrix work (the
convolutions and matrix products, forward and backward) is counted by hand and, for one seed,
checked against PyTorch's own ``FlopCounterMode`` (which counts a grouped convolution as if it
were dense, so it cannot count 32 seeds; they do exactly 32 times one seed's work). A ratio of 4 at the step level asks the 32-seed step to take at most four
one-seed steps, so it needs the rate 32 seeds' FLOPs / (4 × one seed's step). The table sets that
against the rate of a large square matrix product (what this core can do with good shapes) and of
the 32-seed step's largest kernels: the grouped 8-to-8 convolution forward and its backward.

Run: .venv/bin/python benchmarks/cnn_floor.py [--threads 1] [--steps 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

from logbook.engine.child import keep_freed_memory  # noqa: E402
from trainers import digits  # noqa: E402
from trainers.batched import SeedBatch  # noqa: E402

BATCH, CHANNELS = 64, 8


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 5) -> float:
    """The median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training_step(k: int) -> Callable[[], None]:
    """One step of fit_classifier's loop for k batched CNNs, on a fixed batch."""
    contexts = [SimpleNamespace(streams={"init": seed}) for seed in range(k)]
    model = SeedBatch(lambda: digits.CNN(CHANNELS), contexts, torch.float32, torch.device("cpu"),
                      forward=digits.batched_cnn)
    optimizer = model.optimizer("adam", 0.003)
    x, y = torch.rand(k, BATCH, 64), torch.randint(0, 10, (k * BATCH,))

    def step() -> None:
        losses = nn.functional.cross_entropy(model(x).flatten(0, 1), y, reduction="none").view(k, -1).mean(1)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()

    return step


def counted_flops(step: Callable[[], None]) -> int:
    """The matrix FLOPs of one step as PyTorch's FlopCounterMode counts them."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def step_flops(k: int) -> int:
    """The matrix FLOPs of one training step of k CNNs, by hand: a multiply and an add per weight
    use. Forward: conv1 (1 to C channels), conv2 (C to C), head (16·C to 10). Backward: every
    weight's gradient, and the input's gradient of conv2 and the head (conv1's input needs none)."""
    pixels = BATCH * 64
    conv1 = 2 * pixels * CHANNELS * 9
    conv2 = 2 * pixels * CHANNELS * CHANNELS * 9
    head = 2 * BATCH * CHANNELS * 16 * 10
    return k * (2 * conv1 + 3 * conv2 + 3 * head)


def conv2_rates(k: int, repeats: int) -> tuple[float, float]:
    """FLOP/s of the 32-seed step's grouped 8-to-8 convolution: forward, and backward (input and weight)."""
    x = torch.rand(BATCH, k * CHANNELS, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    w = torch.rand(k * CHANNELS, CHANNELS, 3, 3, requires_grad=True)
    flops = 2 * BATCH * 64 * k * CHANNELS * CHANNELS * 9  # one pass: a multiply and an add per weight per pixel
    forward = median_time(lambda: nn.functional.conv2d(x, w, padding=1, groups=k), repeats)
    out = nn.functional.conv2d(x, w, padding=1, groups=k)
    grad = torch.rand_like(out)
    backward = median_time(lambda: torch.autograd.grad(out, (x, w), grad, retain_graph=True), repeats)
    return flops / forward, 2 * flops / backward


def gemm_rate(n: int, repeats: int) -> float:
    """FLOP/s of an n × n × n float32 matrix product."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    return 2 * n**3 / median_time(lambda: a @ b, repeats)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40, help="steps timed at each K (the median is kept)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    one, many = training_step(1), training_step(32)
    flops_one, flops_many, counted_one = step_flops(1), step_flops(32), counted_flops(one)
    time_one, time_many = median_time(one, args.steps), median_time(many, args.steps)
    needed = flops_many / (4 * time_one)
    conv_forward, conv_backward = conv2_rates(32, args.steps)
    conv2 = 32 * 2 * BATCH * 64 * CHANNELS * CHANNELS * 9  # 32 seeds' conv2, one pass
    gemm = gemm_rate(512, args.steps)
    g = 1e9
    rows = [
        ["matrix work of one training step, 1 seed", f"{flops_one / 1e6:.2f} MFLOP (FlopCounterMode: {counted_one / 1e6:.2f})"],
        ["matrix work of one training step, 32 seeds", f"{flops_many / 1e6:.1f} MFLOP"],
        ["one step, 1 seed (measured)", f"{time_one * 1e3:.2f} ms ({flops_one / time_one / g:.1f} GFLOP/s)"],
        ["one step, 32 seeds (measured)", f"{time_many * 1e3:.2f} ms ({flops_many / time_many / g:.1f} GFLOP/s)"],
        ["step-level ratio 32 : 1 (measured)", f"{time_many / time_one:.2f}"],
        ["rate a 32-seed step needs for a ratio of 4", f"{needed / g:.1f} GFLOP/s"],
        ["512 × 512 × 512 matrix product (this machine's good case)", f"{gemm / g:.1f} GFLOP/s"],
        ["grouped 8-to-8 convolution, 32 seeds, forward", f"{conv_forward / g:.1f} GFLOP/s"],
        ["the same convolution, backward (input and weight)", f"{conv_backward / g:.1f} GFLOP/s"],
        ["ratio if the whole step ran at the large product's rate", f"{flops_many / gemm / time_one:.2f}"],
        ["ratio if the step were conv2 alone at rows 8 and 9, everything else free",
         f"{(conv2 / conv_forward + 2 * conv2 / conv_backward) / time_one:.2f}"],
    ]
    record(
        "cnn_floor",
        f"The digits CNN's 32 : 1 floor on CPU, {args.threads} thread(s)",
        ["quantity", "value"],
        rows,
        ["A ratio of 4 needs the 32-seed step to run at the rate in row 6 throughout. This machine's large "
         "matrix product reaches the rate in row 7; PyTorch's kernels at the CNN's shapes (8 channels a seed, "
         "so every per-seed product is 8 wide) reach rows 8 and 9; with them the second convolution alone "
         "keeps the ratio above 4 (row 11).",
         f"Medians of {args.steps} steps or calls after 5 warm-up ones.",
         f"Command: .venv/bin/python benchmarks/cnn_floor.py {' '.join(sys.argv[1:])}"],
    )


if __name__ == "__main__":
    main()
