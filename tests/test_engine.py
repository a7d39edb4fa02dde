"""The run engine with real processes and signals: outcomes, crash recovery, detaching, claims."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import as_from_a_terminal, git, wait_for


def test_success_exception_nan_and_timeout_end_with_the_right_status(project):
    project.entry("ok", "fakes:noisy", {"baseline": {}, "cand": {"effect": 1.0}})
    project.entry("boom", "fakes:boom", {"baseline": {}, "cand": {}})
    project.entry("nan", "fakes:nan", {"baseline": {}, "cand": {}})
    project.entry("hang", {"name": "fakes:hang", "timeout": 1.5}, {"baseline": {}, "cand": {}}, extra="")
    for slug in ("ok", "boom", "nan", "hang"):
        project.logbook("run", slug, "--no-worker")
    # keep the hang entry to one seed pair so the test stays quick
    project.logbook("cancel", "hang")
    project.logbook("requeue", "--run", [r for r in project.runs() if r["arm"] == "baseline" and r["status"] == "cancelled"][0]["id"], "--no-worker")
    out = project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=180)[0]
    runs = project.runs()
    by_status = {}
    for run in runs:
        by_status.setdefault(run["status"], []).append(run)
    ok = [r for r in runs if r["status"] == "succeeded"]
    assert len(ok) == 10, out
    for run in ok:
        assert run["final_metrics"]["score"] is not None and run["predictions_sha256"]
        assert Path(run["predictions_path"]).exists()
        assert json.loads(run["determinism"])["seed"] == run["seed"]
        assert json.loads(run["environment"])["python"]
        assert run["git_commit"] == git(project.root, "rev-parse", "HEAD")
        assert [p[0] for p in project.points(run["id"])] == ["loss"] * 4
    failed = [r for r in runs if r["status"] == "failed"]
    boom = [r for r in failed if "boom at step 1" in (r["error_tail"] or "")]
    assert len(boom) == 10 and all("ValueError" in r["error_tail"] for r in boom)
    diverged = by_status["diverged"]
    assert len(diverged) == 10 and all("non-finite values of: loss, score" in r["error_tail"] for r in diverged)
    assert all(project.points(r["id"])[1][2] is None for r in diverged)  # NaN stored as NULL
    timed_out = [r for r in failed if "timed out after" in (r["error_tail"] or "")]
    assert len(timed_out) == 1 and timed_out[0]["wall_time_s"] < 30
    assert not [r for r in runs if r["status"] in ("running", "queued")]
    # `logbook status` counts one run per seed and arm: a requeued run's retry, not the run it retries.
    retried = {r["retry_of"] for r in runs if r["retry_of"] is not None}
    assert retried
    latest = Counter(r["status"] for r in runs if r["id"] not in retried)
    assert json.loads(project.logbook("status", "--json").stdout)["counts"] == dict(sorted(latest.items()))
    con = sqlite3.connect(project.db)  # the worker judged each entry when its last run ended
    cached = dict(con.execute("SELECT slug, verdict FROM hypothesis").fetchall())
    con.close()
    assert cached["ok"] in ("positive", "inconclusive") and cached["boom"] == "inconclusive"


def test_worker_killed_mid_run_then_restart_marks_the_orphan_crashed_and_requeue_works(project):
    gate = project.root / "gate"
    project.entry("crash", "fakes:gated", {"baseline": {"gate": str(gate), "value": 1.0}, "slow": {"gate": str(project.root / "never"), "value": 2.0}})
    project.logbook("run", "crash", "--no-worker")
    gate.write_text("open")  # baseline runs finish at once; the first slow run waits
    worker = project.start_worker("--cpu-slots", "1")
    running = wait_for(lambda: next((r for r in project.runs() if r["status"] == "running" and r["arm"] == "slow" and r["run_dir"]), None),
                       what="a slow run")
    child_pid = int(wait_for(lambda: (Path(running["run_dir"]) / "started").exists() and (Path(running["run_dir"]) / "started").read_text()))
    finished_before = [r for r in project.runs() if r["status"] == "succeeded"]
    assert finished_before
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    wait_for(lambda: not Path(f"/proc/{child_pid}").exists() or Path(f"/proc/{child_pid}/stat").read_text().split(") ")[1][0] == "Z",
             timeout=15, what="the orphaned trainer to die with its worker")
    assert next(r for r in project.runs() if r["id"] == running["id"])["status"] == "running"  # nothing settled it yet
    project.logbook("cancel", "crash")  # keep the rest of the queue from running in this test
    project.start_worker("--once").communicate(timeout=120)
    after = {r["id"]: r for r in project.runs()}
    orphan = after[running["id"]]
    assert orphan["status"] == "crashed" and "died while it ran" in orphan["error_tail"]
    for run in finished_before:  # finished runs are intact
        assert after[run["id"]]["status"] == "succeeded" and after[run["id"]]["final_metrics"] == {"score": 1.0}
    con = sqlite3.connect(project.db)
    assert con.execute("SELECT status FROM worker ORDER BY id").fetchall() == [("crashed",), ("stopped",)]
    con.close()
    # Requeue the crashed run, with its gate open now: a second attempt (a new row) succeeds, and
    # the crashed attempt stays as it was.
    (project.root / "never").write_text("open")
    project.logbook("requeue", "--run", orphan["id"], "--no-worker")
    project.start_worker("--once").communicate(timeout=120)
    runs = {r["id"]: r for r in project.runs()}
    again = next(r for r in runs.values() if r["retry_of"] == orphan["id"])
    assert (again["status"], again["attempt"], again["final_metrics"], again["seed"]) == ("succeeded", 2, {"score": 2.0}, orphan["seed"])
    assert runs[orphan["id"]]["status"] == "crashed"


def test_sighup_of_the_launching_terminal_does_not_stop_runs(project):
    gate = project.root / "gate"
    project.entry("hup", "fakes:gated", {"baseline": {"gate": str(gate)}, "cand": {"gate": str(gate)}})
    launcher = subprocess.Popen(
        ["bash", "-c", f"{sys.executable} -m logbook --db {project.db} run hup --cpu-slots 2 --yes; sleep 120"],
        cwd=project.root, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, preexec_fn=as_from_a_terminal,
    )
    wait_for(lambda: sum(r["status"] == "running" for r in project.runs()) == 2, what="runs to start")
    os.killpg(launcher.pid, signal.SIGHUP)  # what a closing terminal or dropped SSH session sends
    assert launcher.wait(timeout=10) != 0
    gate.write_text("open")
    wait_for(lambda: all(r["status"] == "succeeded" for r in project.runs()), timeout=120, what="runs to finish")
    assert len(project.runs()) == 10


def test_two_workers_never_claim_the_same_run(project):
    ledger = project.root / "ledger.txt"
    project.entry("claims", "fakes:ledger", {"a": {"ledger": str(ledger), "name": "a"}, "b": {"ledger": str(ledger), "name": "b"}}, seeds=15)
    project.logbook("run", "claims", "--no-worker")
    workers = [project.start_worker("--once", "--cpu-slots", "2") for _ in range(2)]
    outputs = [worker.communicate(timeout=180)[0] for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    lines = ledger.read_text().splitlines()
    assert len(lines) == 30 and len({tuple(line.split()[:2]) for line in lines}) == 30
    runs = project.runs()
    assert all(r["status"] == "succeeded" and r["attempt"] == 1 for r in runs)


def test_command_trainer_with_regex_and_json_lines(project):
    (project.root / "train.py").write_text(textwrap.dedent(
        """\
        import json, os, sys
        json.dump(sys.argv[1:], open(os.path.join(os.environ["LOGBOOK_RUN_DIR"], "argv.json"), "w"))
        cfg = json.loads(os.environ["LOGBOOK_CONFIG"])
        for step in range(3):
            print(f"epoch {step} test loss: {1.0 / (step + 1) + cfg['offset']:.4f}", flush=True)
        with open(os.environ["LOGBOOK_METRICS"], "a") as f:
            f.write(json.dumps({"step": 7, "acc": 0.5 + cfg["offset"]}) + "\\n")
            f.write(json.dumps({"name": "acc", "value": 0.75 + cfg["offset"], "step": 8}) + "\\n")
        sys.exit(int(cfg.get("code", 0)))
        """))
    spec = {"command": f"{sys.executable} train.py --seed {{seed}} --label {{label}} --out {{run_dir}}",
            "metrics": {"test_loss": "test loss: ([0-9.eE+-]+)"}}
    project.entry("cmd", spec, {"baseline": {"offset": 0.0, "label": "two words; $(rm -rf /)"}, "bad": {"offset": 1.0, "label": "x", "code": 3}},
                  metric="test_loss")
    project.logbook("run", "cmd", "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=180)
    runs = project.runs()
    good = [r for r in runs if r["arm"] == "baseline"]
    assert all(r["status"] == "succeeded" for r in good)
    run = good[0]
    assert run["final_metrics"] == {"test_loss": pytest.approx(1 / 3, abs=1e-4), "acc": 0.75}
    assert json.loads((Path(run["run_dir"]) / "argv.json").read_text()) == [
        "--seed", str(run["seed"]), "--label", "two words; $(rm -rf /)", "--out", run["run_dir"]]
    points = project.points(run["id"])
    assert [(n, s) for n, s, _ in points] == [("acc", 7), ("acc", 8), ("test_loss", 1), ("test_loss", 2), ("test_loss", 3)]
    assert "epoch 2 test loss" in Path(run["log_path"]).read_text()
    bad = [r for r in runs if r["arm"] == "bad"]
    assert all(r["status"] == "failed" and "exited with status 3" in r["error_tail"] for r in bad)


def test_cancel_a_running_entry(project):
    gate = project.root / "gate"
    project.entry("stop", "fakes:gated", {"baseline": {"gate": str(gate)}, "cand": {"gate": str(gate)}})
    project.logbook("run", "stop", "--no-worker")
    worker = project.start_worker("--cpu-slots", "2", "--idle-exit", "1")
    wait_for(lambda: sum(r["status"] == "running" for r in project.runs()) == 2, what="runs to start")
    counts = json.loads(project.logbook("cancel", "stop", "--json").stdout)
    assert counts == {"cancelled": 8, "stopping": 2}
    wait_for(lambda: all(r["status"] == "cancelled" for r in project.runs()), timeout=30, what="cancellation")
    worker.communicate(timeout=60)
    assert "cancelled while running" in {r["error_tail"] for r in project.runs()}


def test_status_json_shape_and_slots(project):
    project.entry("st", "fakes:threads", {"baseline": {}, "cand": {}})
    project.logbook("run", "st", "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=120)
    info = json.loads(project.logbook("status", "--json").stdout)
    worker = info["workers"][0]
    assert {"pid", "host", "slots", "status", "alive"} <= set(worker)
    assert worker["slots"] == [{"slot": 0, "gpu": None, "device": "cpu"}, {"slot": 1, "gpu": None, "device": "cpu"}]
    run = info["runs"][0]
    assert {"id", "entry", "arm", "seed", "status", "attempt", "device", "wall_time_s"} <= set(run)
    assert run["entry"] == "st" and run["status"] == "succeeded" and run["device"] == "cpu"
    # each of the two slots gets half of the machine's cores, and no GPU
    assert run["final_metrics"] == {"score": max(1, (os.cpu_count() or 1) // 2), "cuda_visible": 1.0}


def test_entry_point_discovery(tmp_path, project):
    site = tmp_path / "site"
    (site / "fakeplug-1.0.dist-info").mkdir(parents=True)
    (site / "fakeplug-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n")
    (site / "fakeplug-1.0.dist-info" / "entry_points.txt").write_text(
        "[logbook.trainers]\nalpha = fakeplug:train\nbroken = fakeplug_missing:train\n")
    (site / "fakeplug.py").write_text("def train(config, ctx):\n    return {'score': 42.0}\n")
    code = textwrap.dedent(
        f"""\
        import sys, warnings, json
        sys.path.insert(0, {str(site)!r})
        from logbook.engine import plugins
        names = plugins.trainer_names()
        imported_by_listing = 'fakeplug' in sys.modules
        trainer = plugins.load_trainer('alpha')
        try:
            plugins.load_trainer('broken'); broken = 'loaded'
        except plugins.TrainerNotFound as exc:
            broken = str(exc)
        try:
            plugins.load_trainer('nope'); missing = 'loaded'
        except plugins.TrainerNotFound as exc:
            missing = str(exc)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            loaded = plugins.load_all_trainers()
        print(json.dumps({{'names': names, 'listed_imports': imported_by_listing, 'call': trainer({{}}, None),
                          'broken': broken, 'missing': missing, 'all': sorted(loaded),
                          'warnings': [str(w.message) for w in caught]}}))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    info = json.loads(out.stdout)
    assert {"alpha", "broken"} <= set(info["names"]) and info["listed_imports"] is False
    assert info["call"] == {"score": 42.0}
    assert "trainer 'broken' (fakeplug_missing:train) failed to load" in info["broken"]
    assert "no trainer named 'nope'" in info["missing"]
    assert "alpha" in info["all"] and "broken" not in info["all"]
    assert any("broken" in w for w in info["warnings"])
    # And a whole run through the engine finds it by name.
    project.entry("plug", "alpha", {"baseline": {}, "cand": {}})
    project.logbook("run", "plug", "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2", env={"PYTHONPATH": str(site)}).communicate(timeout=120)
    assert {r["final_metrics"]["score"] for r in project.runs()} == {42.0}


def test_unknown_trainer_fails_the_run_not_the_worker(project):
    project.entry("missing", "no_such_module:train", {"baseline": {}, "cand": {}})
    project.logbook("run", "missing", "--no-worker")
    worker = project.start_worker("--once", "--cpu-slots", "2")
    worker.communicate(timeout=120)
    assert worker.returncode == 0
    runs = project.runs()
    assert all(r["status"] == "failed" and "cannot import module 'no_such_module'" in r["error_tail"] for r in runs)


def test_same_seed_gives_the_same_result_and_hash_seed_is_set(project):
    project.entry("det", "fakes:noisy", {"baseline": {}, "cand": {}}, extra="deterministic: true\n")
    project.logbook("run", "det", "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=120)
    runs = project.runs()
    by_seed: dict[int, set] = {}
    for run in runs:
        by_seed.setdefault(run["seed"], set()).add(run["final_metrics"]["score"])
        determinism = json.loads(run["determinism"])
        assert determinism["deterministic"] is True and determinism["cublas_workspace_config"] == ":4096:8"
        assert determinism["pythonhashseed"] == str(run["seed"] % 2**32)
        assert f"python hash seed {run['seed'] % 2**32}" in Path(run["log_path"]).read_text()
    assert all(len(scores) == 1 for scores in by_seed.values())  # both arms share seeds and this trainer ignores config
    assert len(by_seed) == 5


def test_run_needs_a_registered_entry(project):
    (project.root / "d.yaml").write_text((project.root / "fakes.py").read_text()[:0] + textwrap.dedent(
        """\
        title: draft
        hypothesis: h
        metric: score
        goal: maximize
        min_effect: 0.1
        seeds: 5
        trainer: fakes:noisy
        arms: {a: {}, b: {}}
        """))
    project.logbook("new", "d.yaml")
    out = project.logbook("run", "draft", check=False)
    assert out.returncode == 2 and "is a draft" in out.stderr


FAULT_COUNTING_TRAINER = textwrap.dedent('''
    """The built-in digits CNN, logging this process's minor page faults at every logged step."""
    import resource

    from trainers import digits


    class Counting:
        def __init__(self, ctx):
            self.ctx = ctx

        def __getattr__(self, name):
            return getattr(self.ctx, name)

        def log(self, step, **metrics):
            self.ctx.log(step, faults=float(resource.getrusage(resource.RUSAGE_SELF).ru_minflt), **metrics)


    def train_batch(config, contexts):
        return digits.train_batch(config, [Counting(ctx) for ctx in contexts])


    def train(config, ctx):
        return train_batch(config, [ctx])[0]


    train.train_batch = train_batch
''')


PLAIN_PROCESS = textwrap.dedent('''
    """The same job's trainer call in a plain interpreter: no run process, so glibc's malloc defaults."""
    import json, sys
    from pathlib import Path

    import torch

    import faultcount
    from logbook.engine.child import FileReporter
    from logbook.entries.seeding import derive_streams
    from trainers.protocol import RunContext

    job = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(job["threads"])
    reporters = [FileReporter(Path(r["run_dir"])) for r in job["runs"]]
    contexts = [RunContext(seed=r["seed"], streams=derive_streams(r["seed"]), device="cpu", run_dir=Path(r["run_dir"]),
                           reporter=reporter) for r, reporter in zip(job["runs"], reporters)]
    faultcount.train_batch(job["config"], contexts)
    for reporter in reporters:
        reporter.close()
''')


def steady_faults_per_step(tmp_path: Path, run_process: bool) -> float:
    """Train 32 digits CNNs for 61 steps in a fresh process and return its minor page faults per
    training step between steps 20 and 60: in a run process (``python -m logbook.engine.child``),
    or in a plain interpreter calling the same trainer."""
    folder = tmp_path / ("run-process" if run_process else "plain")
    folder.mkdir()
    (folder / "faultcount.py").write_text(FAULT_COUNTING_TRAINER, encoding="utf-8")
    (folder / "plain.py").write_text(PLAIN_PROCESS, encoding="utf-8")
    runs = []
    for seed in range(32):
        (folder / f"run{seed}").mkdir()
        runs.append({"run_id": seed + 1, "run_dir": str(folder / f"run{seed}"), "seed": seed})
    job = {"trainer": {"name": "faultcount:train"}, "runs": runs, "deterministic": False, "threads": 1,
           "device": "cpu", "config": {"model": "cnn", "steps": 61, "log_every": 10}, "timeout": None,
           "worker_pid": os.getpid()}
    (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(Path(__file__).resolve().parents[1])])}
    command = ["-m", "logbook.engine.child"] if run_process else [str(folder / "plain.py")]
    subprocess.run([sys.executable, *command, str(folder / "job.json")], env=env, check=True, capture_output=True,
                   timeout=300)
    faults = {}
    for line in (folder / "run0" / "metrics.jsonl").read_text().splitlines():
        point = json.loads(line)
        if point["name"] == "faults":
            faults[point["step"]] = point["value"]
    return (faults[60] - faults[20]) / 40


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")
def test_a_run_process_reuses_freed_memory_instead_of_faulting_it_in_every_step(tmp_path):
    """32 batched CNNs free and reallocate megabytes of activations every step; with glibc's
    defaults a fresh process gives them back and faults them in again each step (thousands of
    faults a step), while the run process keeps them (``child.keep_freed_memory``)."""
    plain = steady_faults_per_step(tmp_path, run_process=False)
    kept = steady_faults_per_step(tmp_path, run_process=True)
    assert plain > 500, f"the contrast is gone: {plain:.0f} faults a step without the setting"
    assert kept < 100 and kept * 10 < plain, f"{kept:.0f} faults a step in a run process, {plain:.0f} without"
