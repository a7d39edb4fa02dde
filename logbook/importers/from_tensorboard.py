"""TensorBoard: a log directory with one subfolder per run, scalars read through TensorBoard's own
event reader (``EventAccumulator``).

The arm and the seed come from each run folder's name by a pattern: ``--arm-by '{arm}_seed{seed}'``
with ``--seed-by seed`` names the placeholders. Every placeholder but the seed describes the arm
(joined with "-" when there are several) and becomes its config.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

from logbook.errors import InputError
from logbook.importers.common import ImportOptions, SourceRun

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def folder_regex(pattern: str) -> tuple[re.Pattern, list[str]]:
    """A folder-name pattern like ``{arm}_seed{seed}`` as a full-match regular expression."""
    names = PLACEHOLDER.findall(pattern)
    if not names:
        raise InputError(f"--arm-by: expected a folder-name pattern with placeholders such as '{{arm}}_seed{{seed}}', got {pattern!r}")
    if len(set(names)) != len(names):
        raise InputError(f"--arm-by: each placeholder may appear once in {pattern!r}")
    parts, last = [], 0
    for match in PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[last:match.start()]))
        parts.append(f"(?P<{match.group(1)}>.+?)")
        last = match.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("^" + "".join(parts) + "$"), names


def _has_events(folder: Path) -> bool:
    return any(p.name.startswith("events.out.tfevents") for p in folder.iterdir() if p.is_file())


def read_runs(options: ImportOptions) -> Iterator[SourceRun]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
    except ImportError as exc:
        raise InputError("tensorboard: expected the tensorboard package (pip install 'negative-results-logbook[tensorboard]')") from exc
    root = Path(options.location)
    if not root.is_dir():
        raise InputError(f"LOCATION: {options.location}: expected a TensorBoard log directory")
    regex, names = folder_regex(options.arm_by)
    if options.seed_by not in names:
        raise InputError(f"--seed-by: expected one of the placeholders of {options.arm_by!r} ({', '.join(names)}), got {options.seed_by!r}")
    arm_names = [n for n in names if n != options.seed_by]
    if not arm_names:
        raise InputError(f"--arm-by: {options.arm_by!r} has no placeholder for the arm besides {{{options.seed_by}}}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and _has_events(p))
    if not folders:
        raise InputError(f"LOCATION: {options.location}: expected one subfolder of event files per run, found none")
    for folder in folders:
        match = regex.match(folder.name)
        if match is None:
            raise InputError(f"--arm-by: run folder {folder.name!r} does not match {options.arm_by!r}")
        parts = match.groupdict()
        accumulator = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
        accumulator.Reload()
        steps = values = None
        if options.metric in accumulator.Tags().get("scalars", []):
            events = sorted(accumulator.Scalars(options.metric), key=lambda e: (e.step, e.wall_time))
            steps = np.array([e.step for e in events], dtype=np.int64)
            values = np.array([e.value for e in events], dtype=float)
        config = {n: parts[n] for n in arm_names}
        yield SourceRun(
            source_id=folder.name,
            fields={options.arm_by: "-".join(parts[n] for n in arm_names), **parts, "run": folder.name},
            status="succeeded", steps=steps, values=values, params=config,
        )
