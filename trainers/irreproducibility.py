"""`irreproducibility`: the experiment of "Synthesizing Irreproducibility in Deep Networks":
models trained identically apart from their seed disagree on individual examples; smooth
activations are said to disagree less.

Data: a fixed synthetic classification task, the same for every run: ``features``-dimensional
Gaussian inputs labelled by a fixed random teacher network, with 10% label noise (generator seed
fixed). A small MLP (two hidden layers of ``width``) with activation ``relu``, ``smelu``
(smooth ReLU, with half-width ``beta``), ``gelu`` or ``swish``. ``shuffle_window`` sets the data
order: each epoch the examples are shuffled only within consecutive windows of that many
examples (1 keeps a fixed order; ``train_size`` or more shuffles fully), from the run's ``data``
stream. ``init_seed`` holds the initialisation fixed: every run starts from the weights of that
seed instead of its ``init`` stream, so only the data order varies between seeds. The point is
the prediction difference between seeds: each run saves its predicted class probabilities on the
fixed evaluation set.

Config (defaults): activation (relu), width (64), beta (1.0), shuffle_window (2000), init_seed
(none), lr (0.003), steps (600), batch_size (50), train_size (2000), eval_size (1000), features
(20), classes (4), log_every (10), dtype (float32). Metrics: ``loss`` per logged step; final ``eval_loss``,
``eval_acc`` and ``train_loss``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from trainers.batched import SeedBatch, device_of, dtype_of, fit_classifier, generators

DEFAULTS = {"activation": "relu", "width": 64, "beta": 1.0, "shuffle_window": 2000, "init_seed": None, "lr": 0.003, "steps": 600,
            "batch_size": 50, "train_size": 2000, "eval_size": 1000, "features": 20, "classes": 4,
            "log_every": 10, "dtype": "float32"}
DATA_SEED = 2_010_09931


def smelu(x: torch.Tensor, beta: float) -> torch.Tensor:
    """SmeLU: 0 for x ≤ −β, (x + β)² / (4β) for |x| ≤ β, x for x ≥ β (Shamir et al.)."""
    middle = (x + beta) ** 2 / (4 * beta)
    return torch.where(x <= -beta, torch.zeros_like(x), torch.where(x >= beta, x, middle))


class Activation(nn.Module):
    def __init__(self, name: str, beta: float):
        super().__init__()
        if name not in ("relu", "smelu", "gelu", "swish"):
            raise ValueError(f"activation: expected relu, smelu, gelu or swish, got {name!r}")
        self.name, self.beta = name, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "relu":
            return torch.relu(x)
        if self.name == "smelu":
            return smelu(x, self.beta)
        if self.name == "gelu":
            return nn.functional.gelu(x)
        return x * torch.sigmoid(x)


def dataset(cfg: dict[str, Any], dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """The fixed task: (train_x, train_y, eval_x, eval_y), identical for every run."""
    g = torch.Generator().manual_seed(DATA_SEED)
    n, d, c = cfg["train_size"] + cfg["eval_size"], cfg["features"], cfg["classes"]
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    w1 = torch.randn(d, 32, generator=g, dtype=torch.float64) / d**0.5
    w2 = torch.randn(32, c, generator=g, dtype=torch.float64) / 32**0.5
    y = (torch.tanh(x @ w1) @ w2).argmax(1)
    flip = torch.rand(n, generator=g) < 0.1
    y = torch.where(flip, torch.randint(0, c, (n,), generator=g), y)
    split = cfg["train_size"]
    return x[:split].to(dtype), y[:split], x[split:].to(dtype), y[split:]


def window_order(gens: Sequence[torch.Generator], n: int, window: int) -> torch.Tensor:
    """One epoch's order per seed [K, n]: a shuffle inside each window of ``window`` examples."""
    windows = (torch.arange(n) // max(1, window)).to(torch.float64)
    return torch.stack([torch.argsort(windows + 0.5 * torch.rand(n, generator=g, dtype=torch.float64)) for g in gens])


def train_batch(config: dict[str, Any], contexts: Sequence[Any]) -> list[dict[str, float]]:
    cfg = {**DEFAULTS, **config}
    dtype, device = dtype_of(cfg), device_of(contexts)
    train_x, train_y, eval_x, eval_y = (t.to(device) for t in dataset(cfg, dtype))

    def make() -> nn.Module:
        act = Activation(cfg["activation"], cfg["beta"])
        return nn.Sequential(nn.Linear(cfg["features"], cfg["width"]), act, nn.Linear(cfg["width"], cfg["width"]),
                             Activation(cfg["activation"], cfg["beta"]), nn.Linear(cfg["width"], cfg["classes"]))

    model = SeedBatch(make, contexts, dtype, device, init_seed=cfg["init_seed"])
    gens = generators(contexts, "data")
    n, batch = cfg["train_size"], cfg["batch_size"]
    per_epoch = max(1, n // batch)
    epoch_order: dict[int, torch.Tensor] = {}

    def order(step: int) -> torch.Tensor:
        epoch, position = divmod(step, per_epoch)
        if epoch not in epoch_order:
            epoch_order.clear()
            epoch_order[epoch] = window_order(gens, n, cfg["shuffle_window"]).to(device)
        return epoch_order[epoch][:, position * batch : (position + 1) * batch]

    return fit_classifier(model, contexts, (train_x, train_y, eval_x, eval_y), steps=cfg["steps"], lr=cfg["lr"],
                          order=order, log_every=cfg["log_every"])


def train(config: dict[str, Any], ctx: Any) -> dict[str, float]:
    return train_batch(config, [ctx])[0]


train.train_batch = train_batch  # type: ignore[attr-defined]
train.VARIES = frozenset({"init", "data"})  # type: ignore[attr-defined]  # no dropout: nothing draws from noise
