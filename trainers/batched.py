"""Training K seeds of one model at once, in one process, with torch.func.

The K models' parameters are stacked along a leading seed dimension
(``torch.func.stack_module_state``), the forward pass is ``vmap``-ed over ``functional_call``,
the K losses are *summed* (so each seed keeps its own gradient scale) and one optimiser steps all
stacked tensors. Adam and SGD work element by element, so seeds stay independent: seed s trained
in a batch gives the same result as seed s trained alone (bitwise or within rounding; the tests
check float64 on CPU). Everything random is per seed and drawn outside ``vmap``: initialisation
from each seed's ``init`` stream (on the CPU, so a seed means the same weights on any device),
data order from its ``data`` stream, dropout masks from its ``noise`` stream. Gradient clipping,
when asked for, is per seed (one norm across seeds would couple them).

Only per-element optimisers are offered; ones that couple seeds through shared statistics
(LAMB, LARS, LBFGS, loss-driven schedulers) are not.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def dtype_of(config: dict[str, Any]) -> torch.dtype:
    name = config.get("dtype", "float32")
    if name not in DTYPES:
        raise ValueError(f"dtype: expected float32 or float64, got {name!r}")
    return DTYPES[name]


def device_of(contexts: Sequence[Any]) -> torch.device:
    wanted = contexts[0].device
    return torch.device("cuda" if wanted == "cuda" and torch.cuda.is_available() else "cpu")


def generators(contexts: Sequence[Any], stream: str, device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One torch.Generator per seed, seeded from that seed's stream."""
    return [torch.Generator(device=device).manual_seed(int(ctx.streams[stream])) for ctx in contexts]


class SeedBatch:
    """K copies of one architecture, each initialised from its own seed, trained together.

    ``init_seed`` initialises every copy from that one seed instead of its ``init`` stream, for
    configs that hold the initialisation fixed (the init source is then inert).

    ``forward``, when given, is a hand-batched forward pass ``forward(params, *inputs)`` over the
    stacked parameters (leading dimension K) that the model's own ``forward`` would compute seed by
    seed; it replaces ``vmap`` where vmap's batching rules are slow (the CNN's convolutions).
    """

    def __init__(self, make_model: Callable[[], nn.Module], contexts: Sequence[Any], dtype: torch.dtype,
                 device: torch.device, init_seed: int | None = None,
                 forward: Callable[..., torch.Tensor] | None = None):
        models = []
        for ctx in contexts:
            torch.manual_seed(int(ctx.streams["init"]) if init_seed is None else int(init_seed))
            models.append(make_model().to(dtype))
        params, buffers = stack_module_state(models)
        self.params = {k: v.detach().to(device).requires_grad_(True) for k, v in params.items()}
        self.buffers = {k: v.detach().to(device) for k, v in buffers.items()}
        self.base = copy.deepcopy(models[0]).to("meta")
        self.k = len(models)
        self.forward = forward

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run every seed's model on its own slice of each input (leading dimension K)."""
        if self.forward is not None:
            return self.forward(self.params, *inputs)

        def one(params, buffers, *args):  # noqa: ANN001, ANN202
            return functional_call(self.base, (params, buffers), args)

        in_dims = (0, 0) + (0,) * len(inputs)
        return vmap(one, in_dims=in_dims, randomness="error")(self.params, self.buffers, *inputs)

    def optimizer(self, name: str, lr: float, **kwargs: Any) -> torch.optim.Optimizer:
        tensors = list(self.params.values())
        if name == "adam":
            return torch.optim.Adam(tensors, lr=lr, **kwargs)
        if name == "sgd":
            return torch.optim.SGD(tensors, lr=lr, **kwargs)
        raise ValueError(f"optimizer: expected adam or sgd (per-element, so seeds stay independent), got {name!r}")

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Scale each seed's gradients so that *its* norm is at most ``max_norm``."""
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        norms = torch.sqrt(sum(g.reshape(self.k, -1).pow(2).sum(dim=1) for g in grads))
        scale = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
        for g in grads:
            g.mul_(scale.view(self.k, *([1] * (g.dim() - 1))))
        return norms


def report_losses(contexts: Sequence[Any], step: int, **metrics: torch.Tensor) -> None:
    """Log per-seed values (tensors of shape [K]) to each seed's own reporter."""
    columns = {name: value.detach().cpu().tolist() for name, value in metrics.items()}
    for k, ctx in enumerate(contexts):
        ctx.log(step, **{name: values[k] for name, values in columns.items()})


def sample_batches(gens: Sequence[torch.Generator], n: int, batch: int) -> torch.Tensor:
    """Indices [K, batch] drawn with replacement, each seed from its own generator."""
    return torch.stack([torch.randint(0, n, (batch,), generator=g) for g in gens])


def sample_all_batches(gens: Sequence[torch.Generator], n: int, batch: int, steps: int) -> torch.Tensor:
    """Indices [steps, K, batch] for a whole run, drawn once per seed instead of once per step.

    A generator's draws form one stream, so row ``t`` equals what ``sample_batches`` would draw
    at step ``t`` (the tests check it); the training loop then indexes instead of calling each
    seed's generator every step.
    """
    return torch.stack([torch.randint(0, n, (steps, batch), generator=g) for g in gens], dim=1)


def fit_classifier(
    model: SeedBatch,
    contexts: Sequence[Any],
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    steps: int,
    lr: float,
    order: Callable[[int], torch.Tensor],
    masks: Callable[[int, bool], tuple[torch.Tensor, ...]] = lambda batch, training: (),
    clip: float = 0.0,
    log_every: int = 10,
) -> list[dict[str, float]]:
    """Train K classifiers on one shared dataset and evaluate them on a fixed held-out set.

    ``data`` is (train_x, train_y, eval_x, eval_y) on the model's device; ``order(step)`` gives
    each seed's batch indices [K, B]; ``masks(batch_size, training)`` gives extra per-seed
    inputs such as dropout masks [K, B, ...]. Reports ``loss`` per logged step and saves each
    seed's predicted class probabilities on the evaluation set. Returns per-seed final metrics:
    ``eval_loss`` (cross-entropy), ``eval_acc`` and ``train_loss``.
    """
    train_x, train_y, eval_x, eval_y = data
    k = len(contexts)
    optimizer = model.optimizer("adam", lr)
    losses = torch.zeros(k)
    for step in range(steps):
        idx = order(step)
        logits = model(train_x[idx], *masks(idx.shape[1], True))
        target = train_y[idx]
        losses = nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(k, -1).mean(1)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        if clip:
            model.clip_grad_norm_(clip)
        optimizer.step()
        if step % log_every == 0 or step == steps - 1:
            report_losses(contexts, step, loss=losses)
    with torch.no_grad():
        logits = model(eval_x.expand(k, *eval_x.shape), *masks(eval_x.shape[0], False))
        eval_losses = nn.functional.cross_entropy(
            logits.flatten(0, 1), eval_y.repeat(k), reduction="none").view(k, -1).mean(1)
        probabilities = torch.softmax(logits, dim=-1)
        accuracy = (logits.argmax(-1) == eval_y).to(logits.dtype).mean(1)
    results = []
    for i, ctx in enumerate(contexts):
        ctx.save_predictions(probabilities[i])
        results.append({"eval_loss": float(eval_losses[i]), "eval_acc": float(accuracy[i]),
                        "train_loss": float(losses[i].detach())})
    return results
