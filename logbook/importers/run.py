"""One import, start to end: pick the reader for the source kind, gather, then write (or preview)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator

from logbook.db.engine import Store
from logbook.errors import InputError
from logbook.importers.common import KINDS, Gathered, ImportOptions, SourceRun, gather, parse_reduce, write_import


def reader(kind: str) -> Callable[[ImportOptions], Iterator[SourceRun]]:
    if kind == "mlflow":
        from logbook.importers.from_mlflow import read_runs
    elif kind == "tensorboard":
        from logbook.importers.from_tensorboard import read_runs
    elif kind == "wandb":
        from logbook.importers.from_wandb import read_runs
    elif kind == "csv":
        from logbook.importers.from_table import read_runs
    else:
        raise InputError(f"SOURCE_KIND: expected one of {', '.join(KINDS)}, got {kind!r}")
    return read_runs


def normalise_location(kind: str, location: str) -> str:
    """Paths become absolute (so a re-import from another folder is the same source); URIs stay."""
    if "://" in location or location.startswith("file:"):
        return location
    path = Path(location)
    if not path.exists():
        raise InputError(f"LOCATION: {location}: no such file or folder")
    return str(path.resolve())


def make_options(kind: str, location: str, **values: Any) -> ImportOptions:
    if kind not in KINDS:
        raise InputError(f"SOURCE_KIND: expected one of {', '.join(KINDS)}, got {kind!r}")
    delta = values.get("delta")
    if delta is None or not math.isfinite(delta) or delta < 0:
        raise InputError(f"--delta: expected δ ≥ 0 in metric units (required for imports: no automatic δ after seeing the data), got {delta!r}")
    alpha = values.get("alpha", 0.05)
    if not 0 < alpha < 0.5:
        raise InputError(f"--alpha: expected a number between 0 and 0.5 (exclusive), got {alpha:g}")
    values["reduce"] = parse_reduce(values.get("reduce") or "last")
    if values.get("curves") is False and values["reduce"] != "last":
        raise InputError(f"--no-curves: expected --reduce last (min, max and mean-last-K need every point), got {values['reduce']}")
    return ImportOptions(kind=kind, location=normalise_location(kind, location), **values)


def preview(options: ImportOptions) -> Gathered:
    """Read and check the source; write nothing."""
    return gather(reader(options.kind)(options), options)


def run_import(store: Store, options: ImportOptions) -> dict[str, Any]:
    data = preview(options)
    result = write_import(store, options, data)
    result["skipped_unfinished"] = data.skipped_unfinished
    return result
