"""`seq-gating`: the experiment of the seed paper "An Unexpected Road to Inconclusive Deep
Learning Results": does an extra gate in a recurrent cell help?

Task: the adding problem. Each sequence has ``seq_len`` steps of two channels, a value drawn
uniformly from [0, 1] and a marker that is 1 at exactly two steps (one in each half); the target
is the sum of the two marked values. The training set is generated from the run's ``data`` seed
stream; the validation set is fixed (the same for every seed and arm), so arms are compared on
the same examples.

Cells are written from Linear layers (``nn.LSTM`` does not run under ``torch.func.vmap``):
- ``lstm``: the standard cell, input, forget, cell and output gates, forget bias 1;
- ``gated``: the same plus an extra output gate, ``h = σ(o) · tanh(c) · σ(e)``.

Config (defaults): cell (lstm), hidden (32), lr (0.003), steps (400), batch_size (32),
seq_len (20), train_size (2000), val_size (500), clip (1.0; per-seed gradient clipping, 0 = off),
log_every (10), dtype (float32). Metrics: ``loss`` per logged step; final ``val_loss`` (MSE on
the validation set) and ``train_loss``. Predictions: the validation outputs.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from trainers.batched import SeedBatch, device_of, dtype_of, generators, report_losses, sample_batches

DEFAULTS = {"cell": "lstm", "hidden": 32, "lr": 0.003, "steps": 400, "batch_size": 32, "seq_len": 20,
            "train_size": 2000, "val_size": 500, "clip": 1.0, "log_every": 10, "dtype": "float32"}
VALIDATION_SEED = 20_201_231


def adding_problem(n: int, seq_len: int, generator: torch.Generator, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.rand(n, seq_len, generator=generator, dtype=torch.float64)
    half = seq_len // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, seq_len, (n,), generator=generator)
    markers = torch.zeros(n, seq_len, dtype=torch.float64)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)
    y = values[rows, first] + values[rows, second]
    return x.to(dtype), y.to(dtype)


class GatedRecurrent(nn.Module):
    def __init__(self, hidden: int, extra_gate: bool):
        super().__init__()
        gates = 5 if extra_gate else 4
        self.hidden, self.extra_gate = hidden, extra_gate
        self.x2h = nn.Linear(2, gates * hidden)
        self.h2h = nn.Linear(hidden, gates * hidden, bias=False)
        self.out = nn.Linear(hidden, 1)
        with torch.no_grad():
            self.x2h.bias[hidden : 2 * hidden].fill_(1.0)  # forget-gate bias 1: remember by default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hsize = self.hidden
        h = x.new_zeros(x.shape[0], hsize)
        c = x.new_zeros(x.shape[0], hsize)
        for t in range(x.shape[1]):
            z = self.x2h(x[:, t]) + self.h2h(h)
            i, f, g, o = (z[:, k * hsize : (k + 1) * hsize] for k in range(4))
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            if self.extra_gate:
                h = h * torch.sigmoid(z[:, 4 * hsize :])
        return self.out(h).squeeze(-1)


def train_batch(config: dict[str, Any], contexts: Sequence[Any]) -> list[dict[str, float]]:
    cfg = {**DEFAULTS, **config}
    if cfg["cell"] not in ("lstm", "gated"):
        raise ValueError(f"cell: expected lstm or gated, got {cfg['cell']!r}")
    dtype, device = dtype_of(cfg), device_of(contexts)
    k = len(contexts)
    data = generators(contexts, "data")
    sets = [adding_problem(cfg["train_size"], cfg["seq_len"], g, dtype) for g in data]
    train_x = torch.stack([s[0] for s in sets]).to(device)
    train_y = torch.stack([s[1] for s in sets]).to(device)
    val_x, val_y = adding_problem(cfg["val_size"], cfg["seq_len"], torch.Generator().manual_seed(VALIDATION_SEED), dtype)
    val_x, val_y = val_x.to(device), val_y.to(device)

    model = SeedBatch(lambda: GatedRecurrent(cfg["hidden"], cfg["cell"] == "gated"), contexts, dtype, device)
    optimizer = model.optimizer("adam", cfg["lr"])
    seeds = torch.arange(k, device=device)[:, None]
    losses = torch.zeros(k, dtype=dtype, device=device)
    for step in range(cfg["steps"]):
        idx = sample_batches(data, cfg["train_size"], cfg["batch_size"]).to(device)
        pred = model(train_x[seeds, idx])
        losses = ((pred - train_y[seeds, idx]) ** 2).mean(dim=1)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        if cfg["clip"]:
            model.clip_grad_norm_(cfg["clip"])
        optimizer.step()
        if step % cfg["log_every"] == 0 or step == cfg["steps"] - 1:
            report_losses(contexts, step, loss=losses)
    with torch.no_grad():
        val_pred = model(val_x.expand(k, *val_x.shape))
        val_loss = ((val_pred - val_y) ** 2).mean(dim=1)
    results = []
    for i, ctx in enumerate(contexts):
        ctx.save_predictions(val_pred[i])
        results.append({"val_loss": float(val_loss[i]), "train_loss": float(losses[i].detach())})
    return results


def train(config: dict[str, Any], ctx: Any) -> dict[str, float]:
    return train_batch(config, [ctx])[0]


train.train_batch = train_batch  # type: ignore[attr-defined]
train.VARIES = frozenset({"init", "data"})  # type: ignore[attr-defined]  # data: the training set and its batches
