"""Finding trainers: by name in the entry-point group ``logbook.trainers``, or as ``module:callable``.

Three levels, as in Harlequin's plugins: list the names without importing anything; load one
and raise a clear error if it cannot be loaded; load all and warn about the ones that fail.
"""

from __future__ import annotations

import importlib
import warnings
from importlib import metadata
from typing import Any, Callable

from trainers.protocol import ENTRY_POINT_GROUP

COMMAND_TRAINER = "trainers.command:run_command"


class TrainerNotFound(LookupError):
    """The trainer named by an entry cannot be found or imported."""


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def trainer_names() -> list[str]:
    """Names of the installed trainers, read from package metadata (nothing is imported)."""
    return sorted(_entry_points())


def _load_reference(reference: str) -> Callable[..., Any]:
    module_name, _, attribute = reference.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise TrainerNotFound(f"cannot import module {module_name!r} for trainer {reference!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise TrainerNotFound(f"module {module_name!r} has no {attribute!r} (trainer {reference!r})") from exc
    if not callable(target):
        raise TrainerNotFound(f"trainer {reference!r} is not callable")
    return target


def load_trainer(spec: dict[str, Any] | str) -> Callable[..., Any]:
    """The trainer callable for an entry's trainer spec ({"name": ...} or {"command": ...})."""
    if isinstance(spec, dict):
        if "command" in spec:
            return _load_reference(COMMAND_TRAINER)
        spec = spec["name"]
    if ":" in spec:
        return _load_reference(spec)
    points = _entry_points()
    if spec not in points:
        known = ", ".join(sorted(points)) or "none installed"
        raise TrainerNotFound(f"no trainer named {spec!r} in entry-point group {ENTRY_POINT_GROUP} (known: {known})")
    try:
        trainer = points[spec].load()
    except Exception as exc:  # noqa: BLE001 (a broken plugin must say which one it is)
        raise TrainerNotFound(f"trainer {spec!r} ({points[spec].value}) failed to load: {exc!r}") from exc
    if not callable(trainer):
        raise TrainerNotFound(f"trainer {spec!r} ({points[spec].value}) is not callable")
    return trainer


def load_all_trainers() -> dict[str, Callable[..., Any]]:
    """Every installed trainer that loads; each one that does not is reported with a warning."""
    loaded: dict[str, Callable[..., Any]] = {}
    for name in trainer_names():
        try:
            loaded[name] = load_trainer(name)
        except TrainerNotFound as exc:
            warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
    return loaded
