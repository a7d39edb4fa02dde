"""The trainer protocol: what a trainer receives and how it reports.

A trainer is any callable ``trainer(config, ctx)``:

- ``config`` is the arm's config mapping from the hypothesis file;
- ``ctx`` is a :class:`RunContext`: the run's seed and the independent seed streams derived from
  it, the device, the run folder, the trainer options from the entry, and a reporter.

It trains, calls ``ctx.log(step, name=value, ...)`` for learning curves and
``ctx.final(name=value, ...)`` for final metrics (a returned mapping counts as final metrics
too), and may call ``ctx.save_predictions(array)`` with its predictions on a fixed evaluation
set. It raises to fail. Seeds, determinism switches, thread limits and ``CUDA_VISIBLE_DEVICES``
are set before it is called.

Sources of randomness: a trainer declares which of :data:`SOURCES` it can vary one at a time
(each drawn only from its stream in ``ctx.streams``, never from a global generator) with a
``VARIES`` attribute, e.g. ``train.VARIES = frozenset({"init", "data", "noise"})``. A variance
study (the entry file's ``variance_study``) is refused for a source the trainer does not declare.
A trainer without ``VARIES`` supports none. The command trainer declares the sources whose
placeholders (``{seed_init}``, ``{seed_data}``, ``{seed_noise}``, ``{seed_split}``) its command
uses, plus those listed in the entry's ``trainer.varies`` (for scripts that read the
``LOGBOOK_SEED_INIT``, ... environment variables instead).

Trainers are found by name through the entry-point group ``logbook.trainers`` or as
``module:callable``. This module imports nothing from the rest of the project, and trainers
import only this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

ENTRY_POINT_GROUP = "logbook.trainers"
STREAMS = ("init", "data", "noise", "split")  # model initialisation, data order, dropout/noise, data split
SOURCES = STREAMS  # what a variance study can vary, one at a time


@runtime_checkable
class Reporter(Protocol):
    """Where a trainer's numbers go. The run engine supplies the implementation."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record metric values at a training step (a point on each learning curve)."""

    def final(self, metrics: Mapping[str, float]) -> None:
        """Record final metric values; a later value for the same name replaces an earlier one."""

    def save_predictions(self, predictions: Any) -> None:
        """Save predictions on the fixed evaluation set ([examples] or [examples, classes])."""


@dataclass
class RunContext:
    """Everything a trainer needs besides its config."""

    seed: int
    streams: dict[str, int]  # independent seeds for STREAMS, derived from ``seed``
    device: str  # "cuda" or "cpu" (CUDA_VISIBLE_DEVICES already narrows it to this run's GPU)
    run_dir: Path
    reporter: Reporter
    options: dict[str, Any] = field(default_factory=dict)  # the entry's trainer spec
    deterministic: bool = False
    timeout: float | None = None

    def log(self, step: int, **metrics: float) -> None:
        self.reporter.log(step, metrics)

    def final(self, **metrics: float) -> None:
        self.reporter.final(metrics)

    def save_predictions(self, predictions: Any) -> None:
        self.reporter.save_predictions(predictions)

    def numpy_generator(self, stream: str):  # noqa: ANN201 (numpy is optional for trainers)
        """A NumPy Generator for one of STREAMS, so data order and noise vary independently."""
        import numpy as np

        return np.random.default_rng(self.streams[stream])


def declared_sources(trainer: Any, spec: Mapping[str, Any] | None = None) -> frozenset[str]:
    """The sources a loaded trainer declares (its ``VARIES``); for the command trainer, the sources
    whose placeholders its command uses plus the entry's ``trainer.varies``."""
    spec = spec or {}
    if "command" in spec:
        command = str(spec.get("command", ""))
        used = {s for s in SOURCES if "{seed_" + s + "}" in command}
        return frozenset(used | set(spec.get("varies") or ()))
    return frozenset(getattr(trainer, "VARIES", ()) or ())


class Trainer(Protocol):
    def __call__(self, config: dict[str, Any], ctx: RunContext) -> Mapping[str, float] | None: ...
