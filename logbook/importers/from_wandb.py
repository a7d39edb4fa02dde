"""Weights & Biases: offline run folders (``wandb/offline-run-*``), read without network through
wandb's own transaction-log reader (the ``wandb-core`` binary's ``leet inspect --json``), one run at
a time; or the CSV the W&B web table exports (read as a table, see ``from_table``).

Fields for --arm-by / --seed-by: ``config.NAME``, ``name``, ``id``. --experiment selects a W&B
project. The git commit, host and command line come from the run's environment record.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from logbook.errors import InputError
from logbook.importers import from_table
from logbook.importers.common import ImportOptions, SourceRun, flat


def run_files(location: Path) -> list[Path]:
    """The ``.wandb`` logs under a wandb folder, a run folder, or one file."""
    if location.is_file() and location.suffix == ".wandb":
        return [location]
    if location.is_dir():
        found = sorted(location.glob("run-*.wandb")) or sorted(location.glob("*run-*/run-*.wandb"))
        if not found and (location / "wandb").is_dir():
            found = sorted((location / "wandb").glob("*run-*/run-*.wandb"))
        return found
    return []


def records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one run log, as wandb's reader prints them (one JSON object a line)."""
    try:
        from wandb.util import get_core_path
    except ImportError as exc:
        raise InputError("wandb: expected the wandb package (pip install 'negative-results-logbook[wandb]')") from exc
    argv = [get_core_path(), "leet", "inspect", "-no-observability", "-json", "-run-file", str(path), str(path.parent.parent)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            if line.strip():
                yield json.loads(line)
        error = proc.stderr.read()
    if proc.returncode != 0:
        raise InputError(f"LOCATION: {path}: expected a readable W&B run log ({error.strip()[:200]})")


def _time(text: str | None) -> datetime | None:
    """A W&B timestamp (``2026-11-23T18:27:28.597Z``, with any number of fraction digits, a Z, an
    offset or none) in UTC; None when absent or unreadable (the run's time is then unknown)."""
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text.strip().replace("Z", "+00:00")))
    except ValueError:
        return None
    return stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp.astimezone(timezone.utc)


def read_run(path: Path, metric: str) -> tuple[str | None, SourceRun]:
    config: dict[str, Any] = {}
    steps: list[int] = []
    values: list[float] = []
    info: dict[str, Any] = {}
    environment: dict[str, Any] = {}
    exit_code = None
    for record in records(path):
        kind = record.get("type")
        if kind == "run":
            info = record["run"]
            config.update((info.get("config") or {}).get("update") or {})
        elif kind == "config":
            config.update((record["config"] or {}).get("update") or {})
        elif kind == "environment" and ({"program", "code_path"} & set(record["environment"])):
            environment = record["environment"]
        elif kind == "history":
            item = record["history"].get("item") or {}
            if metric in item:
                steps.append(int(item.get("_step", record["history"].get("step", {}).get("num", len(steps)))))
                value = item[metric]
                values.append(float(value) if isinstance(value, (int, float)) else float("nan"))
        elif kind == "exit":
            exit_code = int((record["exit"] or {}).get("exit_code", 0))
    config.pop("_wandb", None)
    command = None
    if environment.get("code_path"):
        command = shlex.join(["python", environment["code_path"], *environment.get("args", [])])
    run_id = info.get("run_id") or path.stem.removeprefix("run-")
    status = None if exit_code is None else ("succeeded" if exit_code == 0 else "failed")
    order = np.argsort(np.array(steps, dtype=np.int64), kind="stable")
    return info.get("project"), SourceRun(
        source_id=run_id,
        fields={**flat("config", config), "name": info.get("display_name") or run_id, "id": run_id},
        status=status,
        steps=np.array(steps, dtype=np.int64)[order] if steps else None,
        values=np.array(values, dtype=float)[order] if values else None,
        params=config, commit=(environment.get("git") or {}).get("commit"), host=environment.get("host") or info.get("host"),
        command=command, started_at=_time(info.get("start_time")),
    )


def read_runs(options: ImportOptions) -> Iterator[SourceRun]:
    location = Path(options.location)
    if location.suffix.lower() in (".csv", ".parquet"):
        yield from from_table.read_runs(options)
        return
    files = run_files(location)
    if not files:
        raise InputError(f"LOCATION: {options.location}: expected a wandb folder with offline-run-* folders, a run folder, or a W&B CSV export")
    projects = set()
    matched = 0
    for path in files:
        project, run = read_run(path, options.metric)
        projects.add(project)
        if options.experiment and project != options.experiment:
            continue
        matched += 1
        yield run
    if options.experiment and not matched:
        raise InputError(f"--experiment: no run of W&B project {options.experiment!r} in {options.location}; "
                         f"expected one of: {', '.join(sorted(p for p in projects if p))}")
