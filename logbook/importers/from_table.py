"""CSV and Parquet tables (pandas): one row per run, with arm, seed and metric columns.

The W&B web table export is such a CSV: its ``State`` column (finished, failed, crashed, killed,
running) gives each run's status, and ``ID`` or ``Name`` its source id. A ``status`` or ``state``
column is read the same way in any table; without one, every row is a finished run (a missing or
non-finite value is then counted as diverged, since a table cannot tell the two apart).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

from logbook.errors import InputError
from logbook.importers.common import ImportOptions, SourceRun

STATES = {"finished": "succeeded", "succeeded": "succeeded", "success": "succeeded", "completed": "succeeded",
          "failed": "failed", "crashed": "crashed", "killed": "cancelled", "cancelled": "cancelled",
          "diverged": "diverged", "running": None, "queued": None, "pending": None}
ID_COLUMNS = ("run_id", "ID", "id", "Name", "name")
STATE_COLUMNS = ("State", "state", "status", "Status")


def read_table(path: Path):  # noqa: ANN201
    import pandas as pd

    if not path.is_file():
        raise InputError(f"LOCATION: {path}: expected a CSV or Parquet file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except ImportError as exc:
        raise InputError(f"LOCATION: {path}: reading Parquet needs pyarrow (pip install 'negative-results-logbook[parquet]')") from exc
    except Exception as exc:  # pandas raises many parser errors; each is bad input here
        raise InputError(f"LOCATION: {path}: expected a readable CSV or Parquet table ({exc.__class__.__name__}: {exc})") from exc


def read_runs(options: ImportOptions) -> Iterator[SourceRun]:
    path = Path(options.location)
    table = read_table(path)
    columns = [str(c) for c in table.columns]
    for option, name in (("--arm-by", options.arm_by), ("--seed-by", options.seed_by)):
        if name not in columns:
            raise InputError(f"{option}: {path} has no column {name!r}; expected one of: {', '.join(columns[:15])}")
    if options.metric not in columns:
        raise InputError(f"--metric: {options.metric!r} was never logged: {path} has no such column (columns: {', '.join(columns[:15])})")
    id_column = next((c for c in ID_COLUMNS if c in columns), None)
    state_column = next((c for c in STATE_COLUMNS if c in columns), None)
    for index, row in enumerate(table.to_dict(orient="records")):
        arm, seed = row[options.arm_by], row[options.seed_by]
        source_id = str(row[id_column]) if id_column else f"{arm}/seed={seed}"
        status = "succeeded"
        if state_column:
            state = str(row[state_column]).strip().lower()
            if state not in STATES:
                raise InputError(f"{path}: row {index + 2}: {state_column}: expected one of {', '.join(sorted(STATES))}, got {state!r}")
            status = STATES[state]
        value = row[options.metric]
        try:
            final = float(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: row {index + 2}: {options.metric}: expected a number, got {value!r}") from exc
        if math.isnan(final) and status == "succeeded":
            status = "diverged"
        yield SourceRun(
            source_id=source_id, fields={k: v for k, v in row.items()}, status=status,
            final=final, params={options.arm_by: arm},
            command=str(row["command"]) if "command" in row and isinstance(row["command"], str) else None,
            commit=str(row["commit"]) if "commit" in row and isinstance(row["commit"], str) else None,
        )
