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

from trainers.batched import SeedBatch, device_of, dtype_of, fit_classifier, generators, sample_all_batches

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

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # no dropout: no mask
        h = torch.relu(self.conv1(x.view(-1, 1, 8, 8)))
        h = nn.functional.max_pool2d(torch.relu(self.conv2(h)), 2)
        return self.head(h.flatten(1))


def batched_cnn(params: dict[str, torch.Tensor], x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """K seeds' CNNs at once: ``CNN.forward`` per seed, on stacked parameters, without vmap.

    The K seeds sit side by side on the channel axis ([B, K·C, 8, 8]) and each convolution is one
    grouped convolution (``groups=K``: seed s's filters see only seed s's channels); the head is
    one batched matrix product. Activations are channels-last (the seeds' channels adjacent in
    memory), where oneDNN's grouped kernels and max-pooling are several times faster on CPU than on
    planes. ReLU is applied after max-pooling, which gives the same values and gradients (max and
    ReLU are both monotone) on a quarter of the elements. x: [K, B, 64].
    """
    k, batch = x.shape[0], x.shape[1]
    w1, w2 = params["conv1.weight"], params["conv2.weight"]
    channels = w1.shape[1]
    h = x.transpose(0, 1).reshape(batch, k, 8, 8).contiguous(memory_format=torch.channels_last)
    h = torch.relu(nn.functional.conv2d(h, w1.flatten(0, 1), params["conv1.bias"].flatten(), padding=1, groups=k))
    h = nn.functional.conv2d(h, w2.flatten(0, 1), params["conv2.bias"].flatten(), padding=1, groups=k)
    h = torch.relu(nn.functional.max_pool2d(h, 2)).reshape(batch, k, channels * 16).transpose(0, 1)
    return torch.baddbmm(params["head.bias"].unsqueeze(1), h, params["head.weight"].transpose(1, 2))


def train_batch(config: dict[str, Any], contexts: Sequence[Any]) -> list[dict[str, float]]:
    cfg = {**DEFAULTS, **config}
    if cfg["model"] not in ("mlp", "cnn"):
        raise ValueError(f"model: expected mlp or cnn, got {cfg['model']!r}")
    dtype, device = dtype_of(cfg), device_of(contexts)
    data = tuple(t.to(device) for t in dataset(dtype))
    if cfg["model"] == "mlp":
        model = SeedBatch(lambda: MLP(cfg["hidden"]), contexts, dtype, device)
    else:
        model = SeedBatch(lambda: CNN(cfg["channels"]), contexts, dtype, device, forward=batched_cnn)
    order_gens, noise_gens = generators(contexts, "data"), generators(contexts, "noise")
    width, keep = cfg["hidden"], 1.0 - float(cfg["dropout"])

    def masks(batch: int, training: bool) -> tuple[torch.Tensor, ...]:
        if cfg["model"] == "cnn":
            return ()
        if not training or keep >= 1.0:
            return (torch.ones(len(contexts), batch, width, dtype=dtype, device=device),)
        drawn = torch.stack([(torch.rand(batch, width, generator=g, dtype=torch.float64) < keep) for g in noise_gens])
        return ((drawn.to(dtype) / keep).to(device),)

    orders = sample_all_batches(order_gens, data[0].shape[0], cfg["batch_size"], cfg["steps"]).to(device)
    return fit_classifier(
        model, contexts, data, steps=cfg["steps"], lr=cfg["lr"], order=lambda step: orders[step],
        masks=masks, log_every=cfg["log_every"])


def train(config: dict[str, Any], ctx: Any) -> dict[str, float]:
    return train_batch(config, [ctx])[0]


train.train_batch = train_batch  # type: ignore[attr-defined]
train.VARIES = frozenset({"init", "data", "noise"})  # type: ignore[attr-defined]
