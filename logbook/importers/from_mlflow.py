"""MLflow: runs of one experiment in a tracking store (``sqlite:///mlflow.db``, a ``./mlruns`` file
store, or a server URL), read through the MLflow client and store API, one page of runs at a time.

Metric histories come in chunks of runs: a SQL tracking store answers one
``get_metric_history_bulk`` call per chunk. Asking per run is quadratic there: MLflow's query for
one run's history searches the metric's rows of every run (SQLite picks the primary-key index,
which starts with the metric key), so 1,000 runs of 1,000 steps cost a billion row visits. Stores
without the bulk call (file stores, servers) are asked per run, which is linear for them.

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
HISTORY_CHUNK = 50  # runs per bulk history call: each call scans the metric once; ~50k points in MLflow objects at a time
BULK_LIMIT = 20_000_000  # the bulk call's row cap; a chunk that reaches it is read again per run
BULK = True  # use the store's bulk history call where it has one (the benchmark turns it off to compare)


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
        history = options.curves or options.reduce != "last"
        token = None
        while True:
            page = client.search_runs([experiment.experiment_id], max_results=PAGE, page_token=token,
                                      order_by=["attributes.start_time ASC"])
            for start in range(0, len(page), HISTORY_CHUNK):
                chunk = page[start:start + HISTORY_CHUNK]
                curves = histories(client, [r.info.run_id for r in chunk if options.metric in r.data.metrics],
                                   options.metric) if history else {}
                for run in chunk:
                    yield _source_run(run, options.metric, history, curves.get(run.info.run_id))
            token = page.token
            if not token:
                return


def histories(client, run_ids: list[str], metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    """Each run's curve of ``metric`` (steps, values in step order), in one bulk call where the store has it."""
    if not run_ids:
        return {}
    store = getattr(getattr(client, "_tracking_client", None), "store", None)  # the client keeps its store there
    bulk = getattr(store, "get_metric_history_bulk", None) if BULK else None
    if bulk is not None:
        points = bulk(run_ids, metric, BULK_LIMIT)
        if len(points) < BULK_LIMIT:
            return curves_by_run([p.run_id for p in points], [p.step for p in points],
                                 [p.timestamp for p in points], [p.value for p in points])
    out = {}
    for run_id in run_ids:
        points = client.get_metric_history(run_id, metric)
        out.update(curves_by_run([run_id] * len(points), [p.step for p in points], [p.timestamp for p in points],
                                 [p.value for p in points]))
    return out


def curves_by_run(run_ids: list[str], steps: list[int], timestamps: list[int],
                  values: list[float]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Points of several runs, in any order, as one curve per run: steps and values ordered by
    step, then time, then value (a step logged twice keeps both points, the later one last)."""
    if not run_ids:
        return {}
    ids = np.asarray(run_ids)
    step = np.asarray(steps, dtype=np.int64)
    value = np.asarray(values, dtype=float)
    order = np.lexsort((value, np.asarray(timestamps, dtype=np.int64), step, ids))
    ids, step, value = ids[order], step[order], value[order]
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, len(ids)]
    return {str(ids[a]): (step[a:b].copy(), value[a:b].copy()) for a, b in zip(starts, ends)}


def _source_run(run, metric: str, history: bool, curve: tuple[np.ndarray, np.ndarray] | None) -> SourceRun:  # noqa: ANN001
    """One run with its curve of the metric when curves or a reduction over the curve are wanted
    (else MLflow's latest value, the one at the largest step)."""
    params, tags = dict(run.data.params), dict(run.data.tags)
    steps, values = curve if curve is not None else (None, None)
    final = run.data.metrics.get(metric) if not history else None
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
