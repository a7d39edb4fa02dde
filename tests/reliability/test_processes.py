"""Real processes and signals: a run's whole process group goes when it ends, is cancelled or is
orphaned; one worker starts however many `logbook run` race; a stopped worker gives its runs a
grace period; closing the launching terminal stops nothing; 16 writers lose no point."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import as_from_a_terminal, git, wait_for
from tests.reliability.helpers import running

# A training script that starts a helper which never writes to stdout (its output goes to
# /dev/null, so the script's own pipe closes when the script ends) and records the helper's pid.
# Before that it records any helper of an earlier run that still runs: a leak beside this run.
SPAWNER = textwrap.dedent("""\
    import os, subprocess, sys, time
    from pathlib import Path
    run_dir, hold = Path(sys.argv[1]), float(sys.argv[2])
    ledger = Path(sys.argv[3])
    for line in (ledger.read_text().split() if ledger.exists() else []):
        stat = Path(f"/proc/{line}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            with open(ledger.with_name("leaks"), "a") as handle:
                handle.write(line + "\\n")
    helper = subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (run_dir / "helper.pid").write_text(str(helper.pid))
    with open(ledger, "a") as handle:
        handle.write(f"{helper.pid}\\n")
    time.sleep(hold)
    print("score: 1.0", flush=True)
    """)

TRAINERS = textwrap.dedent("""\
    import os, signal, sys, time
    from pathlib import Path

    def graceful(config, ctx):
        \"\"\"Checkpoints and exits on SIGTERM.\"\"\"
        def on_term(signum, frame):
            Path(ctx.run_dir, "checkpoint").write_text(str(time.time()))
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        Path(ctx.run_dir, "started").write_text(str(os.getpid()))
        time.sleep(300)

    def stubborn(config, ctx):
        \"\"\"Ignores SIGTERM: only SIGKILL stops it.\"\"\"
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        Path(ctx.run_dir, "started").write_text(str(os.getpid()))
        time.sleep(300)

    def stopper(config, ctx):
        return (stubborn if config.get("stubborn") else graceful)(config, ctx)

    def gated(config, ctx):
        Path(ctx.run_dir, "started").write_text(str(os.getpid()))
        while not Path(config["gate"]).exists():
            time.sleep(0.05)
        for step in range(20):
            ctx.log(step, loss=1.0 / (step + 1))
        return {"score": 1.0}
    """)


def _setup(project) -> None:
    (project.root / "spawner.py").write_text(SPAWNER)
    (project.root / "reltrainers.py").write_text(TRAINERS)
    git(project.root, "add", ".")
    git(project.root, "commit", "-q", "-m", "reliability trainers")


def _spawner_entry(project, name: str, hold: float, seeds: int) -> str:
    ledger = project.root / f"{name}.pids"
    command = f"{sys.executable} spawner.py {{run_dir}} {hold} {ledger}"
    return project.entry(name, {"command": command, "metrics": {"score": r"score: (\S+)"}},
                         {"baseline": {}, "cand": {}}, seeds=seeds)


def _only_two_runs(project, slug: str) -> None:
    """Queue an entry's runs, then keep two of them queued: short scenarios on a loaded machine."""
    project.logbook("run", slug, "--no-worker")
    project.logbook("cancel", slug)
    for run in [r for r in project.runs() if r["status"] == "cancelled"][:2]:
        project.logbook("requeue", "--run", run["id"], "--no-worker")


def _helper_pids(project) -> list[int]:
    return [int(Path(r["run_dir"], "helper.pid").read_text()) for r in project.runs()
            if r["run_dir"] and Path(r["run_dir"], "helper.pid").exists()]


def test_a_finished_runs_helpers_are_gone_before_its_slot_is_reused(project):
    _setup(project)
    _spawner_entry(project, "ends", hold=0.0, seeds=5)
    _only_two_runs(project, "ends")  # one after the other on one slot
    out = project.start_worker("--once", "--cpu-slots", "1").communicate(timeout=240)[0]
    retried = [r for r in project.runs() if r["retry_of"] is not None]  # requeue adds attempts as new rows
    assert [r["status"] for r in retried] == ["succeeded"] * 2, out
    helpers = _helper_pids(project)
    assert len(helpers) == 2 and not any(running(pid) for pid in helpers)
    assert not (project.root / "leaks").exists(), (project.root / "leaks").read_text()


def test_cancel_kills_the_helper_too(project):
    _setup(project)
    _spawner_entry(project, "cancelled", hold=300.0, seeds=5)
    project.logbook("run", "cancelled", "--no-worker")
    worker = project.start_worker("--cpu-slots", "1", "--idle-exit", "0.5")
    helper = wait_for(lambda: _helper_pids(project), timeout=60, what="the first helper")[0]
    project.logbook("cancel", "cancelled")
    worker.communicate(timeout=60)
    assert not running(helper)
    assert {r["status"] for r in project.runs()} == {"cancelled"}


def test_worker_killed_then_restarted_ends_the_orphans_group_and_keeps_finished_results(project):
    _setup(project)
    gate = project.root / "gate"
    project.entry("done", "reltrainers:gated", {"baseline": {"gate": str(gate)}, "cand": {"gate": str(gate)}}, seeds=5)
    _spawner_entry(project, "orphan", hold=300.0, seeds=5)
    gate.write_text("open")
    _only_two_runs(project, "done")
    project.logbook("run", "orphan", "--no-worker")
    worker = project.start_worker("--cpu-slots", "1")
    helper = wait_for(lambda: _helper_pids(project), timeout=120, what="an orphan-to-be's helper")[0]
    finished = {r["id"]: r for r in project.runs() if r["status"] == "succeeded"}
    assert len(finished) == 2
    points = {run_id: project.points(run_id) for run_id in finished}
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert running(helper)  # nobody has ended it yet: the run's child died with its worker
    project.logbook("cancel", "orphan")
    project.start_worker("--once").communicate(timeout=120)
    assert not running(helper)
    after = {r["id"]: r for r in project.runs()}
    crashed = [r for r in after.values() if r["status"] == "crashed"]
    assert len(crashed) == 1 and "died while it ran" in crashed[0]["error_tail"]
    for run_id, run in finished.items():  # nothing finished was lost
        assert after[run_id]["status"] == "succeeded" and after[run_id]["final_metrics"] == {"score": 1.0}
        assert project.points(run_id) == points[run_id] and len(points[run_id]) == 20


def test_two_runs_at_the_same_moment_start_one_worker(project):
    _setup(project)
    gate = project.root / "gate"
    project.entry("race", "reltrainers:gated", {"baseline": {"gate": str(gate)}, "cand": {"gate": str(gate)}}, seeds=5)
    _only_two_runs(project, "race")
    launchers = [subprocess.Popen([sys.executable, "-m", "logbook", "--db", str(project.db), "run", "race", "--yes", "--json"],
                                  cwd=project.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(3)]
    outputs = [json.loads(p.communicate(timeout=120)[0]) for p in launchers]
    started = [o["worker_pid"] for o in outputs if o["worker_pid"]]
    assert len(started) == 1, outputs
    con = sqlite3.connect(project.db)
    wait_for(lambda: con.execute("SELECT count(*) FROM worker").fetchone()[0] >= 1, timeout=60, what="the worker to register")
    gate.write_text("open")
    wait_for(lambda: sum(r["status"] == "succeeded" for r in project.runs()) == 2, timeout=180, what="the runs")
    assert con.execute("SELECT count(*) FROM worker").fetchone()[0] == 1
    assert con.execute("SELECT pid FROM worker").fetchone()[0] == started[0]
    con.close()


def test_sigterm_gives_runs_a_grace_period_then_sigkill(project):
    _setup(project)
    project.entry("grace", "reltrainers:stopper", {"baseline": {}, "stubborn": {"stubborn": True}}, seeds=5)
    project.logbook("run", "grace", "--no-worker")  # runs alternate arms: the first two are one of each
    worker = project.start_worker("--cpu-slots", "2", "--grace", "2")
    started = wait_for(lambda: [r for r in project.runs() if r["status"] == "running" and r["run_dir"]
                                and Path(r["run_dir"], "started").exists()] if
                       sum(1 for r in project.runs() if r["run_dir"] and Path(r["run_dir"], "started").exists()) == 2 else None,
                       timeout=120, what="both trainers")
    assert sorted(r["arm"] for r in started) == ["baseline", "stubborn"]
    pids = [int(Path(r["run_dir"], "started").read_text()) for r in started]
    began = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    out = worker.communicate(timeout=60)[0]
    took = time.monotonic() - began
    assert worker.returncode == 0, out
    assert 2.0 <= took < 10.0, (took, out)  # the stubborn trainer was killed after the grace period
    assert not any(running(pid) for pid in pids)
    by_id = {r["id"]: r for r in project.runs()}
    for run in started:
        again = by_id[run["id"]]
        assert again["status"] == "queued" and again["attempt"] == 2
        assert again["error_tail"] == "interrupted: worker stopped by SIGTERM"
    checkpoints = [r for r in started if Path(r["run_dir"], "checkpoint").exists()]
    assert [r["arm"] for r in checkpoints] == ["baseline"]
    con = sqlite3.connect(project.db)
    assert con.execute("SELECT status FROM worker").fetchall() == [("stopped",)]
    con.close()


def test_sigterm_right_after_registering_stops_the_worker_cleanly(project):
    project.logbook("init")
    worker = project.start_worker("--idle-exit", "60")
    con = sqlite3.connect(project.db)
    wait_for(lambda: con.execute("SELECT count(*) FROM worker").fetchone()[0] == 1, timeout=60, interval=0.005,
             what="the worker to register")
    worker.send_signal(signal.SIGTERM)
    out = worker.communicate(timeout=60)[0]
    assert worker.returncode == 0, out
    assert con.execute("SELECT status FROM worker").fetchall() == [("stopped",)]
    con.close()


def test_sighup_of_a_waiting_run_stops_nothing(project):
    _setup(project)
    gate = project.root / "gate"
    project.entry("hup", "reltrainers:gated", {"baseline": {"gate": str(gate)}, "cand": {"gate": str(gate)}}, seeds=5)
    _only_two_runs(project, "hup")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "logbook", "--db", str(project.db), "run", "hup", "--wait", "--cpu-slots", "2", "--yes"],
        cwd=project.root, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, preexec_fn=as_from_a_terminal,
    )
    wait_for(lambda: sum(r["status"] == "running" for r in project.runs()) == 2, timeout=120, what="runs to start")
    os.killpg(launcher.pid, signal.SIGHUP)  # what a closing terminal or a dropped SSH session sends
    assert launcher.wait(timeout=30) != 0
    gate.write_text("open")
    wait_for(lambda: sum(r["status"] == "succeeded" for r in project.runs()) == 2, timeout=180, what="runs to finish")
    finished = [r for r in project.runs() if r["status"] == "succeeded"]
    assert all(len(project.points(r["id"])) == 20 for r in finished)


def _writer(db: str, run_id: int, errors) -> None:  # noqa: ANN001
    from logbook.db.engine import open_store
    from logbook.engine.ingest import write_chunks

    store = open_store(db, mode="write")
    try:
        for start in range(0, 1000, 50):
            lines = "".join(f'{{"step": {s}, "name": "loss", "value": {s / 1000!r}}}\n' for s in range(start, start + 50))
            write_chunks(store, [(run_id, lines.encode())])
    except Exception as exc:  # noqa: BLE001 (counted, then asserted to be none)
        errors.put(repr(exc))
    finally:
        store.dispose()


def test_sixteen_concurrent_writers_lose_no_point(project):
    project.entry("load", "fakes:nothing", {"baseline": {}, "cand": {}}, seeds=8)
    project.logbook("run", "load", "--no-worker")
    run_ids = [r["id"] for r in project.runs()]
    assert len(run_ids) == 16
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    writers = [ctx.Process(target=_writer, args=(str(project.db), run_id, errors)) for run_id in run_ids]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
    assert [w.exitcode for w in writers] == [0] * 16
    assert errors.empty()
    con = sqlite3.connect(project.db)
    counts = dict(con.execute("SELECT run_id, count(DISTINCT step) FROM metric_point GROUP BY run_id").fetchall())
    assert counts == {run_id: 1000 for run_id in run_ids}
    assert con.execute("SELECT count(*) FROM metric_point").fetchone()[0] == 16_000
    con.close()
