"""`logbook import`: stores written by the real MLflow, TensorBoard and W&B libraries (and pandas
tables), judged as retrospective entries. Each import must reach the verdict that the same numbers
reach through `logbook verdict --baseline-file --candidate-file`; bad sources exit 2 with one line
and write nothing; re-imports add only new runs, as an amendment."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from logbook.entries.retro import RETRO_NOTE

from .conftest import git

ARMS = {"lstm": 0.50, "gated": 0.45}  # final val_loss means: the gated arm is better by 0.05
SEEDS = list(range(8))
STEPS = 6
DELTA = "0.01"


def final_value(arm: str, seed: int) -> float:
    rng = np.random.default_rng(1000 * seed + len(arm))
    return float({**ARMS, "gated2": 0.49}[arm] + rng.normal(0, 0.015))


def curve(arm: str, seed: int) -> list[float]:
    """A decreasing learning curve ending at the run's final value."""
    end = final_value(arm, seed)
    return [end + 0.3 * (STEPS - 1 - step) / STEPS for step in range(STEPS)]


def expected_verdict(cli, tmp_path: Path, values: dict[str, list[float]], *extra: str) -> dict:
    """The verdict of the same numbers through the file-based verb."""
    fb, fc = tmp_path / "lstm.txt", tmp_path / "gated.txt"
    fb.write_text("\n".join(repr(v) for v in values["lstm"]) + "\n")
    fc.write_text("\n".join(repr(v) for v in values["gated"]) + "\n")
    out = cli("verdict", "--baseline-file", fb, "--candidate-file", fc, "--delta", DELTA, "--lower-is-better", *extra, "--json")
    assert out.code == 0, out.err
    return json.loads(out.out)


def assert_same_verdict(imported: dict, expected: dict) -> None:
    comparison = imported["comparisons"][0]
    assert comparison["verdict"] == expected["verdict"] == "positive"
    for key in ("effect", "ci_low", "ci_high", "p_value", "delta", "alpha_adjusted", "n_baseline", "n_candidate"):
        assert comparison[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-15), key
    assert imported["interval"] == "welch"
    assert imported["retrospective"] is True
    assert comparison["sentence"].startswith(f"Retrospective ({RETRO_NOTE}): ")
    # independent cross-check of the effect: difference of means in the better (lower) direction
    assert comparison["effect"] == pytest.approx(np.mean(imported["arms"]["lstm"]["values"]) - np.mean(imported["arms"]["gated"]["values"]))


def import_json(cli, *args: str) -> dict:
    out = cli("import", *args, "--json")
    assert out.code == 0, out.err
    return json.loads(out.out)


def entry_count(cli) -> int:
    out = cli("list", "--json")
    if out.code == 2 and "logbook init" in out.err:  # no logbook at all: nothing was ever written
        return 0
    return len(json.loads(out.out)["entries"])


# ---- MLflow ------------------------------------------------------------------------------------

def write_mlflow(uri: str, arms: dict[str, list[int]], experiment: str = "rnn-gates", extra_tags: dict | None = None) -> None:
    """Runs logged with the fluent MLflow API, in a fresh interpreter (MLflow keeps global state)."""
    code = f"""
import os, mlflow
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
mlflow.set_tracking_uri({uri!r})
mlflow.set_experiment({experiment!r})
for arm, seeds in {arms!r}.items():
    for seed in seeds:
        with mlflow.start_run():
            mlflow.log_param("model", arm)
            mlflow.log_param("seed", seed)
            mlflow.log_param("hidden", 64)
            mlflow.set_tags({extra_tags or {}!r})
            for step, value in enumerate(CURVES[(arm, seed)]):
                mlflow.log_metric("val_loss", value, step=step)
"""
    curves = {(arm, seed): curve(arm, seed) for arm, seeds in arms.items() for seed in seeds}
    out = subprocess.run([sys.executable, "-c", f"CURVES = {curves!r}\n" + code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.fixture(scope="module")
def mlflow_stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    sqlite_uri = f"sqlite:///{root / 'mlflow.db'}"
    file_uri = (root / "mlruns").as_uri()
    plan = {arm: SEEDS for arm in ARMS}
    write_mlflow(sqlite_uri, plan)
    write_mlflow(file_uri, plan)
    return {"sqlite": sqlite_uri, "file": str(root / "mlruns"), "root": root}


def mlflow_args(location: str, *extra: str) -> list[str]:
    return ["mlflow", location, "--experiment", "rnn-gates", "--arm-by", "params.model", "--seed-by", "params.seed",
            "--metric", "val_loss", "--baseline", "lstm", "--delta", DELTA, "--lower-is-better", *extra]


@pytest.mark.parametrize("store_kind", ["sqlite", "file"])
def test_mlflow_import_reaches_the_file_verdict(cli, tmp_path, mlflow_stores, store_kind):
    result = import_json(cli, *mlflow_args(mlflow_stores[store_kind]))
    assert result["created"] and result["added_runs"] == 16 and result["arms"] == {"lstm": 8, "gated": 8}
    verdict = json.loads(cli("verdict", str(result["id"]), "--json").out)
    expected = expected_verdict(cli, tmp_path, {arm: [final_value(arm, s) for s in SEEDS] for arm in ARMS})
    assert_same_verdict(verdict, expected)
    show = json.loads(cli("show", str(result["id"]), "--json").out)
    assert show["retrospective"] is True and show["import_source"]["kind"] == "mlflow"
    assert show["arms"][1]["config"] == {"hidden": "64", "model": "gated"}
    assert show["registration_verified"] is True
    # the learning curve came along, every step of it
    con = sqlite3.connect(tmp_path / "lb" / "logbook.db")
    steps = con.execute("SELECT COUNT(*), COUNT(DISTINCT run_id) FROM metric_point WHERE name = 'val_loss'").fetchone()
    assert steps == (16 * STEPS, 16)


def test_mlflow_bulk_histories_match_per_run_histories(mlflow_stores, monkeypatch):
    """A SQL store's histories come from one bulk call per chunk of runs (chunks smaller than the
    page here, so runs straddle them) and equal, point for point, what each run logged and what
    the per-run call returns."""
    from mlflow.tracking import MlflowClient

    from logbook.importers import from_mlflow
    from logbook.importers.run import make_options

    options = make_options("mlflow", mlflow_stores["sqlite"], experiment="rnn-gates", arm_by="params.model",
                           seed_by="params.seed", metric="val_loss", reduce="min", baseline="lstm", delta=0.01,
                           lower_is_better=True)
    monkeypatch.setattr(from_mlflow, "HISTORY_CHUNK", 5)
    per_run = MlflowClient.get_metric_history
    monkeypatch.setattr(MlflowClient, "get_metric_history", lambda *a: pytest.fail("per-run history on a SQL store"))
    bulk = list(from_mlflow.read_runs(options))
    monkeypatch.setattr(MlflowClient, "get_metric_history", per_run)
    monkeypatch.setattr(from_mlflow, "BULK", False)
    single = list(from_mlflow.read_runs(options))
    assert [r.source_id for r in bulk] == [r.source_id for r in single] and len(bulk) == 16
    for a, b in zip(bulk, single):
        arm, seed = a.fields["params.model"], int(a.fields["params.seed"])
        assert a.steps.tolist() == b.steps.tolist() == list(range(STEPS))
        assert a.values.tolist() == b.values.tolist() == curve(arm, seed)


def metric_points(db: Path) -> list[tuple]:
    """Every stored point of the imported curves, keyed by the source run id."""
    con = sqlite3.connect(db)
    return con.execute("SELECT r.source_id, p.step, p.value FROM metric_point p JOIN run r ON r.id = p.run_id "
                       "WHERE p.name = 'val_loss' ORDER BY 1, 2").fetchall()


@pytest.mark.parametrize("store_kind", ["sqlite", "file"])
def test_parallel_history_readers_give_the_serial_curves(cli, tmp_path, mlflow_stores, monkeypatch, store_kind):
    """Forced with LOGBOOK_IMPORT_PARALLEL_MIN_RUNS (the README's knob), histories are read by
    worker processes (bulk calls on SQLite, per-run calls on the file store) and the import stores
    exactly the points, runs and verdict of the serial path."""
    from logbook.importers import from_mlflow

    used = []
    parallel = from_mlflow._parallel_curves
    monkeypatch.setattr(from_mlflow, "_parallel_curves", lambda *a: used.append(a[-1]) or parallel(*a))
    monkeypatch.setattr(from_mlflow, "HISTORY_CHUNK", 3)  # several chunks in flight, runs straddling them
    results = {}
    for mode, env in {"serial": {"LOGBOOK_IMPORT_WORKERS": "1"},
                      "parallel": {"LOGBOOK_IMPORT_WORKERS": "2", "LOGBOOK_IMPORT_PARALLEL_MIN_RUNS": "1"}}.items():
        db = tmp_path / f"{mode}.db"
        monkeypatch.setenv("LOGBOOK_DB", str(db))
        for key in ("LOGBOOK_IMPORT_WORKERS", "LOGBOOK_IMPORT_PARALLEL_MIN_RUNS"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        result = import_json(cli, *mlflow_args(mlflow_stores[store_kind], "--reduce", "min"))
        verdict = json.loads(cli("verdict", str(result["id"]), "--json").out)
        results[mode] = (result["added_runs"], metric_points(db), verdict["comparisons"])
    assert used == [2]  # the parallel import, and only it, went through two worker processes
    (n_serial, serial, v_serial), (n_parallel, points, v_parallel) = results["serial"], results["parallel"]
    assert n_serial == n_parallel == 16 and len(serial) == 16 * STEPS
    assert points == serial
    assert v_parallel == v_serial
    # and both are what MLflow was given
    runs = {}
    for run_id, step, value in points:
        runs.setdefault(run_id, []).append((step, value))
    assert sorted(min(v for _, v in curve_) for curve_ in runs.values()) == pytest.approx(
        sorted(min(curve(arm, seed)) for arm in ARMS for seed in SEEDS), rel=1e-12)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_unreadable_histories_exit_2_with_one_line_and_write_nothing(cli, tmp_path, mlflow_stores, monkeypatch, workers):
    """A store that lists its runs but whose metric history table is gone fails the same way
    whether the history was read here or in a worker process."""
    broken = tmp_path / "broken.db"
    broken.write_bytes((mlflow_stores["root"] / "mlflow.db").read_bytes())
    con = sqlite3.connect(broken)
    con.execute("DROP TABLE metrics")  # run listings use latest_metrics; histories need this table
    con.execute("CREATE TABLE metrics (key TEXT)")  # present (MLflow would recreate a missing one), but useless
    con.commit()
    con.close()
    monkeypatch.setenv("LOGBOOK_IMPORT_WORKERS", workers)
    monkeypatch.setenv("LOGBOOK_IMPORT_PARALLEL_MIN_RUNS", "1")
    out = cli("import", *mlflow_args(str(broken), "--reduce", "min"))
    assert out.code == 2, out.err
    assert out.err.strip().count("\n") == 0, out.err
    assert out.err.startswith(f"LOCATION: {broken}: expected the history of metric 'val_loss' to be readable"), out.err
    assert out.err.strip().endswith("MLflow said: (sqlite3.OperationalError) no such column: metrics.value"), out.err
    assert entry_count(cli) == 0


def test_bad_worker_setting_is_one_line(cli, mlflow_stores, monkeypatch):
    monkeypatch.setenv("LOGBOOK_IMPORT_WORKERS", "many")
    out = cli("import", *mlflow_args(mlflow_stores["sqlite"]))
    assert out.code == 2 and out.err.startswith("LOGBOOK_IMPORT_WORKERS: expected a whole number"), out.err


@pytest.mark.parametrize(("cpus", "load", "expected"), [(2, 0.4, 2), (2, 1.2, 1), (2, 3.0, 1), (16, 0.0, 4), (16, 13.6, 2)])
def test_default_readers_are_the_idle_cores(monkeypatch, cpus, load, expected):
    """Without LOGBOOK_IMPORT_WORKERS an import reads with one process per idle core (CPUs less
    the one-minute load, rounded), at least 1 and at most 4."""
    from logbook.importers import from_mlflow

    monkeypatch.delenv("LOGBOOK_IMPORT_WORKERS", raising=False)
    monkeypatch.setattr(from_mlflow.os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(from_mlflow.os, "getloadavg", lambda: (load, load, load))
    assert from_mlflow.history_workers() == expected
    monkeypatch.setenv("LOGBOOK_IMPORT_WORKERS", "3")
    assert from_mlflow.history_workers() == 3  # the setting wins over the machine's load


def test_curves_by_run_orders_each_run_by_step_then_time():
    from logbook.importers.from_mlflow import curves_by_run

    curves = curves_by_run(["b", "a", "b", "a", "b"], [1, 0, 0, 0, 1], [5, 1, 9, 2, 3], [0.3, 0.1, 0.2, 0.4, 0.5])
    assert {k: (s.tolist(), v.tolist()) for k, (s, v) in curves.items()} == {
        "a": ([0, 0], [0.1, 0.4]), "b": ([0, 1, 1], [0.2, 0.5, 0.3])}
    assert curves_by_run([], [], [], []) == {}


@pytest.mark.parametrize("reduce_, pick", [("min", min), ("max", max), ("mean-last-3", lambda c: float(np.mean(c[-3:])))])
def test_mlflow_reductions_use_the_whole_curve(cli, tmp_path, mlflow_stores, reduce_, pick):
    result = import_json(cli, *mlflow_args(mlflow_stores["sqlite"], "--reduce", reduce_))
    verdict = json.loads(cli("verdict", str(result["id"]), "--json").out)
    for arm in ARMS:
        assert verdict["arms"][arm]["values"] == pytest.approx([pick(curve(arm, s)) for s in SEEDS], rel=1e-12)


def test_reimport_adds_nothing_then_new_runs_as_an_amendment(cli, tmp_path):
    uri = f"sqlite:///{tmp_path / 'grow.db'}"
    write_mlflow(uri, {arm: SEEDS[:6] for arm in ARMS})
    first = import_json(cli, *mlflow_args(uri))
    again = import_json(cli, *mlflow_args(uri))
    assert again == {**first, "created": False, "added_runs": 0, "amendments": []}
    assert entry_count(cli) == 1
    write_mlflow(uri, {arm: SEEDS[6:] for arm in ARMS})
    grown = import_json(cli, *mlflow_args(uri))
    assert grown["id"] == first["id"] and grown["added_runs"] == 4 and len(grown["amendments"]) == 1
    show = json.loads(cli("show", str(first["id"]), "--json").out)
    amendment = show["amendments"][-1]
    assert amendment["field"] == "runs" and (amendment["old"], amendment["new"]) == (12, 16)
    assert "found 4 new runs" in amendment["reason"] and amendment["at"]
    verdict = json.loads(cli("verdict", str(first["id"]), "--json").out)
    assert verdict["interval"] == "anytime"  # seeds added after looking: the anytime-valid interval
    assert [len(verdict["arms"][a]["values"]) for a in ARMS] == [8, 8]
    assert import_json(cli, *mlflow_args(uri))["added_runs"] == 0
    changed = cli("import", *mlflow_args(uri)[:-3], "--delta", "0.02", "--lower-is-better")
    assert changed.code == 2 and changed.err.startswith("--delta: entry")


def test_family_is_every_imported_arm(cli, tmp_path):
    uri = f"sqlite:///{tmp_path / 'family.db'}"
    write_mlflow(uri, {"lstm": SEEDS, "gated": SEEDS, "gated2": SEEDS[:5]}, experiment="many")
    result = import_json(cli, "mlflow", uri, "--experiment", "many", "--arm-by", "params.model", "--seed-by",
                         "params.seed", "--metric", "val_loss", "--baseline", "lstm", "--delta", DELTA, "--lower-is-better")
    verdict = json.loads(cli("verdict", str(result["id"]), "--json").out)
    assert verdict["family_size"] == 2
    assert {c["alpha_adjusted"] for c in verdict["comparisons"]} == {0.025}


# ---- TensorBoard ---------------------------------------------------------------------------------

def test_tensorboard_import_reaches_the_file_verdict(cli, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path / "tb"
    for arm in ARMS:
        for seed in SEEDS:
            writer = SummaryWriter(log_dir=str(logdir / f"{arm}_seed{seed}"))
            for step, value in enumerate(curve(arm, seed)):
                writer.add_scalar("val_loss", value, step)
            writer.close()
    result = import_json(cli, "tensorboard", logdir, "--arm-by", "{model}_seed{seed}", "--seed-by", "seed",
                         "--metric", "val_loss", "--baseline", "lstm", "--delta", DELTA, "--lower-is-better")
    verdict = json.loads(cli("verdict", str(result["id"]), "--json").out)
    # TensorBoard stores scalars as float32: the same numbers are the float32 ones
    values = {arm: [float(np.float32(final_value(arm, s))) for s in SEEDS] for arm in ARMS}
    assert_same_verdict(verdict, expected_verdict(cli, tmp_path, values))
    show = json.loads(cli("show", str(result["id"]), "--json").out)
    assert [a["config"] for a in show["arms"]] == [{"model": "lstm"}, {"model": "gated"}]


# ---- W&B -----------------------------------------------------------------------------------------

def test_wandb_offline_runs_reach_the_file_verdict(cli, tmp_path):
    code = f"""
import os
os.environ["WANDB_MODE"] = "offline"; os.environ["WANDB_SILENT"] = "true"
import wandb
for (arm, seed), values in CURVES.items():
    run = wandb.init(project="rnn-gates", config={{"model": arm, "seed": seed}}, dir={str(tmp_path)!r}, reinit="finish_previous")
    for value in values:
        run.log({{"val_loss": value}})
    run.finish()
run = wandb.init(project="other", config={{"model": "x", "seed": 1}}, dir={str(tmp_path)!r})
run.log({{"val_loss": 9.0}}); run.finish()
"""
    curves = {(arm, seed): curve(arm, seed) for arm in ARMS for seed in SEEDS}
    env = {**os.environ, "WANDB_DIR": str(tmp_path), "WANDB_MODE": "offline"}
    out = subprocess.run([sys.executable, "-c", f"CURVES = {curves!r}\n" + code], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 17
    result = import_json(cli, "wandb", tmp_path / "wandb", "--experiment", "rnn-gates", "--arm-by", "config.model",
                         "--seed-by", "config.seed", "--metric", "val_loss", "--baseline", "lstm", "--delta", DELTA,
                         "--lower-is-better")
    assert result["arms"] == {"lstm": 8, "gated": 8}
    verdict = json.loads(cli("verdict", str(result["id"]), "--json").out)
    values = {arm: [final_value(arm, s) for s in SEEDS] for arm in ARMS}
    assert_same_verdict(verdict, expected_verdict(cli, tmp_path, values))
    missing = cli("import", "wandb", tmp_path / "wandb", "--experiment", "nope", "--arm-by", "config.model",
                  "--seed-by", "config.seed", "--metric", "val_loss", "--baseline", "lstm", "--delta", DELTA)
    assert missing.code == 2 and missing.err.startswith("--experiment: no run of W&B project 'nope'")


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-23T18:27:28.597Z", datetime(2026, 11, 23, 18, 27, 28, 597000, tzinfo=timezone.utc)),
    ("2026-11-23T18:27:28.597123Z", datetime(2026, 11, 23, 18, 27, 28, 597123, tzinfo=timezone.utc)),
    ("2026-11-23T18:27:28.5971239Z", datetime(2026, 11, 23, 18, 27, 28, 597123, tzinfo=timezone.utc)),
    ("2026-11-23T18:27:28", datetime(2026, 11, 23, 18, 27, 28, tzinfo=timezone.utc)),
    ("2026-11-23T20:27:28.5+02:00", datetime(2026, 11, 23, 18, 27, 28, 500000, tzinfo=timezone.utc)),
    ("yesterday", None), ("", None), (None, None)])
def test_wandb_times_of_any_precision_are_read_in_utc(text, expected):
    """W&B writes milliseconds or microseconds (a run's start once came with three digits and
    broke the import); an unreadable time is unknown, not an error."""
    from logbook.importers.from_wandb import _time

    assert _time(text) == expected


def test_wandb_web_table_csv(cli, tmp_path):
    rows = [{"Name": f"{arm}-{seed}", "ID": f"id{arm}{seed}", "State": "finished", "model": arm, "seed": seed,
             "val_loss": final_value(arm, seed)} for arm in ARMS for seed in SEEDS]
    rows.append({"Name": "lstm-99", "ID": "idcrash", "State": "crashed", "model": "lstm", "seed": 99, "val_loss": float("nan")})
    rows.append({"Name": "gated-98", "ID": "idrun", "State": "running", "model": "gated", "seed": 98, "val_loss": 0.1})
    path = tmp_path / "wandb_export.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    result = import_json(cli, "wandb", path, "--arm-by", "model", "--seed-by", "seed", "--metric", "val_loss",
                         "--baseline", "lstm", "--delta", DELTA, "--lower-is-better")
    assert result["skipped_unfinished"] == 1
    verdict = json.loads(cli("verdict", str(result["id"]), "--json").out)
    assert verdict["comparisons"][0]["excluded_baseline"] == 1  # the crashed run is counted, not dropped
    expected = expected_verdict(cli, tmp_path, {arm: [final_value(arm, s) for s in SEEDS] for arm in ARMS})
    assert verdict["comparisons"][0]["verdict"] == expected["verdict"]
    assert verdict["comparisons"][0]["effect"] == pytest.approx(expected["effect"], rel=1e-12)


# ---- CSV / Parquet -------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_import_reaches_the_file_verdict(cli, tmp_path, suffix):
    table = pd.DataFrame([{"arm": arm, "seed": seed, "val_loss": final_value(arm, seed)} for arm in ARMS for seed in SEEDS])
    path = tmp_path / f"runs{suffix}"
    table.to_csv(path, index=False) if suffix == ".csv" else table.to_parquet(path)
    result = import_json(cli, "csv", path, "--arm-by", "arm", "--seed-by", "seed", "--metric", "val_loss",
                         "--baseline", "lstm", "--delta", DELTA, "--lower-is-better")
    verdict = json.loads(cli("verdict", str(result["id"]), "--json").out)
    assert_same_verdict(verdict, expected_verdict(cli, tmp_path, {arm: [final_value(arm, s) for s in SEEDS] for arm in ARMS}))


# ---- bad sources: exit 2, one line, nothing written ----------------------------------------------

def _csv(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / f"bad{len(list(tmp_path.glob('bad*.csv')))}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_bad_sources_exit_2_with_one_line_and_write_nothing(cli, tmp_path, mlflow_stores):
    good = [{"arm": a, "seed": s, "val_loss": 0.5} for a in ARMS for s in SEEDS]
    csv_args = ["--arm-by", "arm", "--seed-by", "seed", "--metric", "val_loss", "--baseline", "lstm", "--delta", DELTA]
    cases = [
        (["mlflow", mlflow_stores["sqlite"], "--experiment", "missing", "--arm-by", "params.model", "--seed-by", "params.seed",
          "--metric", "val_loss", "--baseline", "lstm", "--delta", DELTA], "--experiment: no experiment named 'missing'"),
        (mlflow_args(mlflow_stores["sqlite"])[:12] + ["--metric", "accuracy", "--baseline", "lstm", "--delta", DELTA],
         "--metric: 'accuracy' was never logged"),
        (["mlflow", mlflow_stores["sqlite"], "--experiment", "rnn-gates", "--arm-by", "params.model", "--seed-by", "params.rng",
          "--metric", "val_loss", "--baseline", "lstm", "--delta", DELTA], "--seed-by: run "),
        (["csv", _csv(tmp_path, [{k: v for k, v in r.items() if k != "seed"} for r in good]), *csv_args],
         "--seed-by: "),
        (["csv", _csv(tmp_path, good + [{"arm": "lonely", "seed": 1, "val_loss": 0.4}]), *csv_args],
         "--seed-by: arm 'lonely' has one seed"),
        (["csv", _csv(tmp_path, good + [{"arm": "lstm", "seed": 3, "val_loss": 0.4}]), *csv_args],
         "--seed-by: arm 'lstm' has seed 3 in two runs"),
        (["csv", _csv(tmp_path, [r for r in good if r["arm"] == "lstm"]), *csv_args], "--arm-by: arm gives one arm"),
        (["csv", _csv(tmp_path, good), *csv_args[:-4], "--baseline", "gru", "--delta", DELTA], "--baseline: expected one of"),
        (["csv", _csv(tmp_path, good), *csv_args[:-2], "--delta", "-1"], "--delta: expected δ ≥ 0"),
        (["csv", _csv(tmp_path, good), *csv_args[:-2]], "Error: Missing option '--delta'"),
    ]
    for args, start in cases:
        out = cli("import", *args)
        assert out.code == 2, (args, out.err)
        assert out.err.strip().count("\n") == 0 or start.startswith("Error"), out.err
        assert start in out.err.strip().splitlines()[-1] if start.startswith("Error") else out.err.startswith(start), out.err
    db = tmp_path / "lb" / "logbook.db"
    assert not db.exists() or sqlite3.connect(db).execute("SELECT COUNT(*) FROM hypothesis").fetchone()[0] == 0


# ---- what an imported entry says, and audits ---------------------------------------------------

def test_retrospective_label_in_show_and_exports_and_audit_refusal(cli, tmp_path, mlflow_stores, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = import_json(cli, *mlflow_args(mlflow_stores["sqlite"]))
    show = cli("show", str(result["id"]))
    assert "RETROSPECTIVE" in show.out and RETRO_NOTE in show.out
    assert "cannot be audited: no command to rerun it" in show.out
    text = cli("verdict", str(result["id"]))
    assert RETRO_NOTE in text.out
    for fmt in ("md", "tex", "json", "csv"):
        out = cli("export", str(result["id"]), "--format", fmt, "--out", tmp_path / f"x{fmt}")
        assert out.code == 0, out.err
        written = "".join(p.read_text() for p in (tmp_path / f"x{fmt}").rglob(f"*.{fmt}"))
        assert "not pre-registered" in written, fmt
    for verb in (["audit", str(result["id"]), "--no-worker"], ["run", str(result["id"]), "--seeds", "2", "--no-worker"]):
        refused = cli(*verb)
        assert refused.code == 2 and refused.err.startswith("ENTRY: ") and "no command to rerun it" in refused.err, verb
        assert refused.err.strip().count("\n") == 0


def test_import_with_command_and_commit_can_be_audited(cli, tmp_path, git_repo, monkeypatch):
    (git_repo / "train.py").write_text(
        "import sys\nseed = int(sys.argv[sys.argv.index('--seed') + 1])\nprint(f'val_loss: {0.5 + seed * 1e-3}')\n")
    git(git_repo, "add", ".")
    git(git_repo, "commit", "-q", "-m", "train")
    commit = git(git_repo, "rev-parse", "HEAD")
    uri = f"sqlite:///{tmp_path / 'cmd.db'}"
    write_mlflow(uri, {arm: SEEDS[:5] for arm in ARMS}, extra_tags={"mlflow.source.git.commit": commit, "host": "gpu-box-3"})
    monkeypatch.chdir(git_repo)
    result = import_json(cli, *mlflow_args(uri, "--command", "python train.py --seed {seed} --model {model}"))
    show = json.loads(cli("show", str(result["id"]), "--json").out)
    assert show["git"]["commit"] == commit and show["rerun_missing"] == []
    assert show["import_source"]["host"] == "gpu-box-3"  # the host the runs recorded
    assert show["trainer"]["command"] == "python train.py --seed {seed} --model {model}"
    started = cli("audit", str(result["id"]), "--seeds", "3", "--no-worker", "--yes", "--json")
    assert started.code == 0, started.err
    report = json.loads(started.out)
    assert report["pending_runs"] == 6 and report["commit"] == commit


def test_terminal_app_marks_imported_entries(cli, tmp_path, db_path):
    from tests.test_tui import loaded, make_app

    from logbook.tui.screens.entry import EntryScreen

    table = pd.DataFrame([{"arm": arm, "seed": seed, "val_loss": final_value(arm, seed)} for arm in ARMS for seed in SEEDS])
    table.to_csv(tmp_path / "runs.csv", index=False)
    result = import_json(cli, "csv", tmp_path / "runs.csv", "--arm-by", "arm", "--seed-by", "seed", "--metric", "val_loss",
                         "--baseline", "lstm", "--delta", DELTA, "--lower-is-better", "--title", "Gated cell, from a CSV")
    assert cli("verdict", str(result["id"])).code == 0

    async def drive() -> None:
        app = make_app(db_path)
        async with app.run_test(size=(120, 40)) as pilot:
            entries = await loaded(pilot, "#entries", 1)
            title = entries.get_row_at(0)[1]
            assert str(title) == " R  Gated cell, from a CSV"
            assert any("magenta" in str(span.style) for span in title.spans)
            app.push_screen(EntryScreen(result["id"]))
            await loaded(pilot, "#runs", 16)
            card = str(app.screen.query_one("#card").render())
            assert "RETROSPECTIVE" in card and RETRO_NOTE in card and "imported from csv" in card
            assert "cannot be audited: no command to rerun it" in card
            assert RETRO_NOTE in str(app.screen.query_one("#verdict-panel").render())

    import asyncio

    asyncio.run(drive())


def test_recorded_command_lines_become_the_rerun_command(cli, tmp_path):
    uri = f"sqlite:///{tmp_path / 'recorded.db'}"
    code = f"""
import mlflow
mlflow.set_tracking_uri({uri!r})
mlflow.set_experiment("rec")
for arm in ("lstm", "gated"):
    for seed in range(3):
        with mlflow.start_run():
            mlflow.log_params({{"model": arm, "seed": seed, "hidden": 64}})
            mlflow.set_tag("command", f"python train.py --seed {{seed}} --model {{arm}} --hidden 64")
            mlflow.log_metric("val_loss", 0.5 - 0.01 * seed)
"""
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300).returncode == 0
    args = ["mlflow", uri, "--experiment", "rec", "--arm-by", "params.model", "--seed-by", "params.seed", "--metric",
            "val_loss", "--baseline", "lstm", "--delta", DELTA, "--lower-is-better"]
    preview = cli("import", *args, "--dry-run", "--json")
    assert json.loads(preview.out)["arms"] == {"lstm": 3, "gated": 3}
    assert entry_count(cli) == 0  # a dry run writes nothing
    result = import_json(cli, *args)
    show = json.loads(cli("show", str(result["id"]), "--json").out)
    assert show["trainer"]["command"] == "python train.py --seed {seed} --model {model} --hidden {hidden}"
    assert show["trainer"]["metrics"]["val_loss"].startswith("val_loss")
    assert show["rerun_missing"] == ["no git commit (the runs recorded none, or several; give --commit when importing)"]


def test_terminal_app_import_dialog_previews_before_writing(cli, tmp_path, db_path):
    from tests.test_tui import loaded, make_app

    table = pd.DataFrame([{"arm": arm, "seed": seed, "val_loss": final_value(arm, seed)} for arm in ARMS for seed in SEEDS])
    table.to_csv(tmp_path / "runs.csv", index=False)
    assert cli("init").code == 0
    fields = {"kind": "csv", "location": str(tmp_path / "runs.csv"), "arm_by": "arm", "seed_by": "seed",
              "metric": "val_loss", "baseline": "lstm", "delta": DELTA, "title": "Gated cell, from the dialog",
              "command": "python train.py --seed {seed}", "lower_is_better": "y"}

    async def drive() -> None:
        from textual.widgets import Input

        app = make_app(db_path)
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("i")
            await pilot.pause(0.2)
            for name, value in fields.items():
                app.screen.query_one(f"#import-{name}", Input).value = value
            app.screen.query_one("#import-lower_is_better", Input).focus()
            await pilot.press("enter")
            preview = ""
            for _ in range(200):
                await pilot.pause(0.05)
                preview = str(app.screen.query_one("#import-preview").render())
                if "seeds" in preview:
                    break
            assert "lstm (baseline): 8 seeds" in preview and "gated: 8 seeds" in preview
            con = sqlite3.connect(db_path)  # (the CLI's output cannot be captured while the app runs)
            assert con.execute("SELECT COUNT(*) FROM hypothesis").fetchone()[0] == 0  # the preview wrote nothing
            con.close()
            await pilot.press("enter")
            entries = await loaded(pilot, "#entries", 1)
            assert str(entries.get_row_at(0)[1]).startswith(" R ")

    import asyncio

    asyncio.run(drive())
    out = cli("show", "1", "--json")
    assert out.code == 0, out.err
    shown = json.loads(out.out)
    assert shown["retrospective"] and shown["min_effect"] == 0.01 and shown["goal"] == "minimize"
    assert shown["title"] == "Gated cell, from the dialog"
    assert shown["trainer"]["command"] == "python train.py --seed {seed}"
