"""`digits`: scikit-learn's bundled 8×8 handwritten digits (no download), an MLP or a small CNN.

The split is fixed (1,297 training and 500 held-out images, the same for every run); the run's
``data`` stream orders the training batches and its ``noise`` stream draws the dropout masks
(outside vmap, per seed, so a seed trained in a batch equals the same seed trained alone).

Config (defaults): model (mlp or cnn), hidden (64; MLP width), channels (8; CNN), dropout (0.1;
MLP), lr (0.003), steps (300), batch_size (64), log_every (10), dtype (float32). Metrics:
``loss`` per logged step; final ``eval_acc``, ``eval_loss`` (cross-entropy on the held-out images)
and ``train_loss``. Predictions: class probabilities on the held-out images.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from trainers.batched import SeedBatch, device_of, dtype_of, fit_classifier, generators, sample_batches

DEFAULTS = {"model": "mlp", "hidden": 64, "channels": 8, "dropout": 0.1, "lr": 0.003, "steps": 300, "batch_size": 64,
            "log_every": 10, "dtype": "float32"}
SPLIT_SEED = 8_8_2026
HELD_OUT = 500


def dataset(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.as_tensor(digits.data / 16.0, dtype=dtype)
    y = torch.as_tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    held, train = perm[:HELD_OUT], perm[HELD_OUT:]
    return x[train], y[train], x[held], y[held]


class MLP(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.first, self.second = nn.Linear(64, hidden), nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.second(torch.relu(self.first(x)) * mask)


class CNN(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.head = nn.Linear(channels * 16, 10)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # mask unused: no dropout
        h = torch.relu(self.conv1(x.view(-1, 1, 8, 8)))
        h = nn.functional.max_pool2d(torch.relu(self.conv2(h)), 2)
        return self.head(h.flatten(1))


def train_batch(config: dict[str, Any], contexts: Sequence[Any]) -> list[dict[str, float]]:
    cfg = {**DEFAULTS, **config}
    if cfg["model"] not in ("mlp", "cnn"):
        raise ValueError(f"model: expected mlp or cnn, got {cfg['model']!r}")
    dtype, device = dtype_of(cfg), device_of(contexts)
    data = tuple(t.to(device) for t in dataset(dtype))
    make = (lambda: MLP(cfg["hidden"])) if cfg["model"] == "mlp" else (lambda: CNN(cfg["channels"]))
    model = SeedBatch(make, contexts, dtype, device)
    order_gens, noise_gens = generators(contexts, "data"), generators(contexts, "noise")
    width = cfg["hidden"] if cfg["model"] == "mlp" else 1
    keep = 1.0 - float(cfg["dropout"]) if cfg["model"] == "mlp" else 1.0

    def masks(batch: int, training: bool) -> tuple[torch.Tensor]:
        if not training or keep >= 1.0:
            return (torch.ones(len(contexts), batch, width, dtype=dtype, device=device),)
        drawn = torch.stack([(torch.rand(batch, width, generator=g, dtype=torch.float64) < keep) for g in noise_gens])
        return ((drawn.to(dtype) / keep).to(device),)

    return fit_classifier(
        model, contexts, data, steps=cfg["steps"], lr=cfg["lr"],
        order=lambda step: sample_batches(order_gens, data[0].shape[0], cfg["batch_size"]).to(device),
        masks=masks, log_every=cfg["log_every"])


def train(config: dict[str, Any], ctx: Any) -> dict[str, float]:
    return train_batch(config, [ctx])[0]


train.train_batch = train_batch  # type: ignore[attr-defined]
train.VARIES = frozenset({"init", "data", "noise"})  # type: ignore[attr-defined]
