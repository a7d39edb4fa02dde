"""MLflow: runs of one experiment in a tracking store (``sqlite:///mlflow.db``, a ``./mlruns`` file
store, or a server URL), read through the MLflow client and store API, one page of runs at a time.

Metric histories come in chunks of runs: a SQL tracking store answers one
``get_metric_history_bulk`` call per chunk. Asking per run is quadratic there: MLflow's query for
one run's history searches the metric's rows of every run (SQLite picks the primary-key index,
which starts with the metric key), so 1,000 runs of 1,000 steps cost a billion row visits. Stores
without the bulk call (file stores, servers) are asked per run, which is linear for them.

Large imports read histories in worker processes (each with its own MLflow client, returning
plain arrays, never MLflow objects), a few chunks ahead of the writer and consumed in run order:
building MLflow's Python objects is most of an import's CPU. ``LOGBOOK_IMPORT_WORKERS`` sets how
many (default: one per idle core, at most 4; 1 reads in this process) and
``LOGBOOK_IMPORT_PARALLEL_MIN_RUNS`` from how many runs on (default 200; smaller imports are not
worth starting processes for).

Fields for --arm-by / --seed-by: ``params.NAME``, ``tags.NAME``, ``run_name``. The git commit comes
from the ``mlflow.source.git.commit`` tag; a rerun command from a ``command`` param or tag.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from logbook.errors import InputError
from logbook.importers.common import ImportOptions, SourceRun, flat

STATUS = {"FINISHED": "succeeded", "FAILED": "failed", "KILLED": "cancelled"}  # RUNNING, SCHEDULED: not yet
PAGE = 500
HISTORY_CHUNK = 50  # runs per bulk history call: each call scans the metric once; ~50k points in MLflow objects at a time
BULK_LIMIT = 20_000_000  # the bulk call's row cap; a chunk that reaches it is read again per run
BULK = True  # use the store's bulk history call where it has one (the benchmark turns it off to compare)
WORKERS_ENV = "LOGBOOK_IMPORT_WORKERS"  # history reader processes; 1: read in the importing process
MIN_RUNS_ENV = "LOGBOOK_IMPORT_PARALLEL_MIN_RUNS"  # fewer runs than this: read in the importing process
MIN_RUNS = 200
DB_LOG = "mlflow.store.db.utils"  # logs a failed query with its SQL before raising it; the import's one line says it


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
        workers, least = history_workers(), parallel_min_runs()
        pages = _pages(client, experiment.experiment_id)
        seen: list[list] = []  # pages read ahead to learn whether the import is large enough for workers
        for page in pages:
            seen.append(page)
            if sum(map(len, seen)) >= least:
                break
        chunks = _chunks(chain(seen, pages))
        if history and workers > 1 and sum(map(len, seen)) >= least:
            curved = _parallel_curves(uri, chunks, options, workers)
        else:
            curved = ((chunk, _serial_curves(client, chunk, options) if history else {}) for chunk in chunks)
        for chunk, curves in curved:
            for run in chunk:
                yield _source_run(run, options.metric, history, curves.get(run.info.run_id))


def history_workers() -> int:
    """Reader processes for histories: ``LOGBOOK_IMPORT_WORKERS``, else one per idle core (at most 4).

    Idle cores are the CPU count less the one-minute load average, rounded. Readers pay for
    themselves only on cores nobody else is using: on an idle 2-core machine two readers import
    1,000 runs of 1,000 steps in 55 s against 72 s in this process (benchmarks/results/imports.md),
    while on the same machine under a load of 3 they took 157 s against 105 s."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if not text:
        return idle_cores()
    try:
        return max(1, int(text))
    except ValueError:
        raise InputError(f"{WORKERS_ENV}: expected a whole number of worker processes, got {text!r}") from None


def idle_cores(most: int = 4) -> int:
    """Cores not busy with other work: CPU count less the one-minute load average, rounded, in [1, most]."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform: assume the cores are busy
        return 1
    return max(1, min(most, int(cpus - load + 0.5)))


def parallel_min_runs() -> int:
    """The smallest import read by worker processes: ``LOGBOOK_IMPORT_PARALLEL_MIN_RUNS``, else 200."""
    text = os.environ.get(MIN_RUNS_ENV, "").strip()
    try:
        return int(text) if text else MIN_RUNS
    except ValueError:
        raise InputError(f"{MIN_RUNS_ENV}: expected a whole number of runs, got {text!r}") from None


def _pages(client, experiment_id: str) -> Iterator[list]:  # noqa: ANN001
    """The experiment's runs, one page at a time, oldest first."""
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=PAGE, page_token=token,
                                  order_by=["attributes.start_time ASC"])
        yield page
        token = page.token
        if not token:
            return


def _chunks(pages: Iterable[list]) -> Iterator[list]:
    """Runs in chunks of ``HISTORY_CHUNK`` (a chunk never straddles two pages)."""
    for page in pages:
        for start in range(0, len(page), HISTORY_CHUNK):
            yield page[start:start + HISTORY_CHUNK]


def _wanted(chunk: list, metric: str) -> list[str]:
    return [run.info.run_id for run in chunk if metric in run.data.metrics]


def _history_failed(options: ImportOptions, exc: BaseException) -> InputError:
    """The one-line error for a store that lists its runs but cannot give a metric's history."""
    reason = " ".join(str(exc).split("[SQL:")[0].split())[:300] or type(exc).__name__  # the SQL text is noise here
    return InputError(f"LOCATION: {options.location}: expected the history of metric {options.metric!r} "
                      f"to be readable, MLflow said: {reason}")


def _serial_curves(client, chunk: list, options: ImportOptions) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    log = logging.getLogger(DB_LOG)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        return histories(client, _wanted(chunk, options.metric), options.metric)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 (any store failure is this import's one-line error)
        raise _history_failed(options, exc) from exc
    finally:
        log.setLevel(level)


def _parallel_curves(uri: str, chunks: Iterator[list], options: ImportOptions,
                     workers: int) -> Iterator[tuple[list, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """Each chunk with its curves, in order, read by ``workers`` processes at most two chunks
    each ahead of the consumer (memory stays bounded whatever the store's size)."""
    # spawn: fresh interpreters share no SQLAlchemy connection with this one, and as this process's
    # own children their CPU time is counted with it (a fork server's children would not be)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_start, initargs=(uri,))
    pending: deque[tuple[list, Future]] = deque()
    try:
        for chunk in chunks:
            pending.append((chunk, pool.submit(_worker_curves, _wanted(chunk, options.metric), options.metric)))
            if len(pending) >= 2 * workers:
                yield _done(pending.popleft(), options)
        while pending:
            yield _done(pending.popleft(), options)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _done(item: tuple[list, Future], options: ImportOptions) -> tuple[list, dict[str, tuple[np.ndarray, np.ndarray]]]:
    chunk, future = item
    try:
        return chunk, future.result()
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 (a worker's failure, or its death, is this import's one-line error)
        raise _history_failed(options, exc) from exc


_worker_client = None  # each reader process's own MLflow client (and database connections)


def _worker_start(uri: str) -> None:
    """Reader process set-up: one MLflow client for the life of the process."""
    global _worker_client
    from mlflow.tracking import MlflowClient

    if uri.startswith("file:"):
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    logging.getLogger(DB_LOG).setLevel(logging.CRITICAL)
    _worker_client = MlflowClient(tracking_uri=uri)


def _worker_curves(run_ids: list[str], metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One chunk's curves, as arrays (cheap to send back, unlike MLflow's metric objects). A failure
    comes back as its message: MLflow's exceptions do not always survive pickling."""
    try:
        return histories(_worker_client, run_ids, metric)
    except Exception as exc:  # noqa: BLE001 (the importing process turns it into the one-line error)
        raise RuntimeError(str(exc) or type(exc).__name__) from None


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
