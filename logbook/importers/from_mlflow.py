"""MLflow: runs of one experiment in a tracking store (``sqlite:///mlflow.db``, a ``./mlruns`` file
store, or a server URL), read through the MLflow client API, one page of runs and one run's metric
history at a time.

Fields for --arm-by / --seed-by: ``params.NAME``, ``tags.NAME``, ``run_name``. The git commit comes
from the ``mlflow.source.git.commit`` tag; a rerun command from a ``command`` param or tag.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from logbook.errors import InputError
from logbook.importers.common import ImportOptions, SourceRun, flat

STATUS = {"FINISHED": "succeeded", "FAILED": "failed", "KILLED": "cancelled"}  # RUNNING, SCHEDULED: not yet
PAGE = 500


def tracking_uri(location: str) -> str:
    """A tracking URI from what the user typed: a URI as is, a ``.db`` file as SQLite, a folder as a file store."""
    if "://" in location or location.startswith("file:"):
        if location.startswith("sqlite:///"):
            path = Path(location[len("sqlite:///"):])
            if not path.is_file():
                raise InputError(f"LOCATION: {location}: expected an existing MLflow SQLite store, found no file {path}")
        return location
    path = Path(location)
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    if path.is_dir():
        return path.resolve().as_uri()
    raise InputError(f"LOCATION: {location}: expected an MLflow tracking URI, a SQLite .db file or an mlruns folder")


@contextmanager
def _file_store_allowed(uri: str):
    """MLflow refuses to open a file store unless asked; reading an existing one is what we are here for."""
    if not uri.startswith("file:"):
        yield
        return
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms else None


def read_runs(options: ImportOptions) -> Iterator[SourceRun]:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise InputError("mlflow: expected the mlflow package (pip install 'negative-results-logbook[mlflow]')") from exc
    if not options.experiment:
        raise InputError("--experiment: expected the name of an MLflow experiment")
    uri = tracking_uri(options.location)
    with _file_store_allowed(uri):
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(options.experiment)
        if experiment is None:
            names = ", ".join(sorted(e.name for e in client.search_experiments())[:10]) or "none"
            raise InputError(f"--experiment: no experiment named {options.experiment!r} in {options.location}; expected one of: {names}")
        token = None
        while True:
            page = client.search_runs([experiment.experiment_id], max_results=PAGE, page_token=token,
                                      order_by=["attributes.start_time ASC"])
            for run in page:
                yield _source_run(client, run, options.metric, history=options.curves or options.reduce != "last")
            token = page.token
            if not token:
                return


def _source_run(client, run, metric: str, history: bool) -> SourceRun:  # noqa: ANN001
    """One run; its metric history only when curves or a reduction over the curve are wanted
    (else MLflow's latest value, the one at the largest step)."""
    params, tags = dict(run.data.params), dict(run.data.tags)
    steps = values = None
    final = run.data.metrics.get(metric) if not history else None
    if history and metric in run.data.metrics:
        history = sorted(client.get_metric_history(run.info.run_id, metric), key=lambda m: (m.step, m.timestamp))
        steps = np.fromiter((m.step for m in history), dtype=np.int64, count=len(history))
        values = np.fromiter((m.value for m in history), dtype=float, count=len(history))
    return SourceRun(
        source_id=run.info.run_id,
        fields={**flat("params", params), **flat("tags", tags), "run_name": run.info.run_name, "run_id": run.info.run_id},
        status=STATUS.get(run.info.status),
        steps=steps, values=values, final=final, params=params,
        commit=tags.get("mlflow.source.git.commit"),
        host=tags.get("mlflow.source.host") or tags.get("host"),
        command=params.get("command") or tags.get("command"),
        started_at=_time(run.info.start_time), ended_at=_time(run.info.end_time),
    )
