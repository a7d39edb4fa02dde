"""The Slurm executor against a real single-node Slurm (tests/slurm/cluster.sh starts it).

These tests run real sbatch, squeue, sacct, scancel and scontrol. They need root and the Slurm
packages (`make system-deps` installs them as root); where the cluster cannot be started they are
skipped with the reason. Select them with `-m slurm`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from logbook.db.engine import open_store
from logbook.engine.queue import cancel
from tests.conftest import wait_for

pytestmark = pytest.mark.slurm

CLUSTER = Path(__file__).parent / "slurm" / "cluster.sh"
STATE = Path(os.environ.get("LOGBOOK_SLURM_STATE", "/tmp/logbook-slurm-test"))
FAST_POLL = {"LOGBOOK_SLURM_POLL": "0.5"}


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running test cluster; started here (and stopped at the end) unless one already runs."""
    if os.geteuid() != 0:
        pytest.skip("needs a real Slurm: run as root with slurm-wlm, slurmdbd, munge, mariadb-server (make system-deps)")
    up = subprocess.run([str(CLUSTER), "status", str(STATE)], capture_output=True, text=True)
    started_here = up.returncode != 0
    if started_here:
        out = subprocess.run([str(CLUSTER), "start", str(STATE)], capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            missing = "missing" in out.stderr or "needs root" in out.stderr
            message = f"Slurm test cluster did not start: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
            if missing:
                pytest.skip(message + " (install with `make system-deps` as root)")
            pytest.fail(message)  # installed but broken: that is a failure, not a skip
    os.environ["SLURM_CONF"] = str(STATE / "etc" / "slurm.conf")
    yield STATE
    if started_here and not os.environ.get("LOGBOOK_SLURM_KEEP"):
        subprocess.run([str(CLUSTER), "stop", str(STATE)], capture_output=True, timeout=120)


def squeue(*args: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", *args], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line.strip()]


def sacct(job: str) -> dict[str, str]:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job, "-o", "JobID,State"], capture_output=True, text=True,
                         check=True)
    pairs = (line.split("|")[:2] for line in out.stdout.splitlines() if line)
    return {job: state.split()[0] for job, state in pairs}  # "CANCELLED by 0" -> "CANCELLED"


TRAIN = textwrap.dedent(
    """\
    import json, os, sys, time
    cfg = json.loads(os.environ["LOGBOOK_CONFIG"])
    seed = int(sys.argv[1])
    hung = os.path.join(os.environ["LOGBOOK_RUN_DIR"], "hung-once")
    if cfg.get("hang") == "always" or (cfg.get("hang") == "first start" and not os.path.exists(hung)):
        open(hung, "w").close()
        time.sleep(600)
    started = os.path.join(os.environ["LOGBOOK_RUN_DIR"], "started-once")
    if cfg.get("first_start_sleep") and not os.path.exists(started):  # the first start waits to be requeued
        open(started, "w").close()
        time.sleep(float(cfg["first_start_sleep"]))
    time.sleep(float(cfg.get("sleep", 0)))
    for step in range(3):
        print(f"step {step} score: {cfg['base'] + 0.01 * (seed % 7) + 0.1 * step:.4f}", flush=True)
    """
)


@pytest.fixture
def slurm_project(project, slurm_cluster):
    (project.root / "train.py").write_text(TRAIN)
    yield project
    if not project.db.exists():
        return
    jobs = {r["slurm_job_id"].split("_")[0] for r in project.runs() if r["slurm_job_id"] and r["slurm_job_id"][0].isdigit()}
    if jobs:
        subprocess.run(["scancel", *sorted(jobs)], capture_output=True)


def command_entry(project, name: str, arms: dict, seeds: int = 5, extra: str = "") -> str:
    spec = {"command": f"{sys.executable} train.py {{seed}}", "metrics": {"score": r"score: ([0-9.]+)"}}
    return project.entry(name, spec, arms, seeds=seeds, extra=extra)


def one_run_on_slurm(project, name: str, config: dict, minutes: int = 5, max_requeues: int = 2,
                     candidate: dict | None = None, cpus: int = 1) -> str:
    """An entry (two arms of five seeds, the least it may have) of which only the first run (of
    each arm, with a ``candidate`` config) is left queued for Slurm; a Slurm worker is started."""
    slug = command_entry(project, name, {"baseline": config, "cand": candidate or config},
                         extra=f"slurm:\n  time: {minutes}\n  max_requeues: {max_requeues}\n  cpus_per_task: {cpus}\n")
    project.logbook("run", slug, "--executor", "slurm", "--no-worker")
    runs = project.runs()
    keep = {runs[0]["id"]} | ({next(r["id"] for r in runs if r["arm"] == "cand")} if candidate else set())
    store = open_store(project.db)
    for run in runs:
        if run["id"] not in keep:
            cancel(store, run_id=run["id"])  # still queued: cancelled at once
    store.dispose()
    project.start_worker("--executor", "slurm", "--slurm-poll", "0.5", "--idle-exit", "20")
    return slug


def running_alone(project):
    runs = [r for r in project.runs() if r["status"] != "cancelled"]
    return runs if len(runs) == 1 and runs[0]["slurm_state"] == "RUNNING" else None


def settled(project, n: int):
    runs = project.runs()
    return runs if len(runs) == n and all(r["status"] not in ("queued", "running") for r in runs) else None


def test_two_arms_of_five_seeds_reach_a_verdict_as_one_job_array(slurm_project):
    project = slurm_project
    slug = command_entry(project, "arms", {"baseline": {"base": 0.1}, "better": {"base": 0.9}},
                         extra="slurm:\n  time: 5\n  max_running: 4\n")
    out = project.logbook("run", slug, "--executor", "slurm", "--json", env=FAST_POLL)
    assert json.loads(out.stdout)["worker_pid"]
    runs = wait_for(lambda: settled(project, 10), timeout=180, interval=0.5, what="10 runs to end on Slurm")
    assert [r["status"] for r in runs] == ["succeeded"] * 10, [r["error_tail"] for r in runs]
    arrays = {r["slurm_job_id"].split("_")[0] for r in runs}
    assert len(arrays) == 1  # one sbatch for the entry's ten seeds
    assert sorted(int(r["slurm_job_id"].split("_")[1]) for r in runs) == list(range(10))
    assert all(r["executor"] == "slurm" and r["slurm_state"] == "COMPLETED" and r["node"] for r in runs)
    (array,) = arrays
    states = sacct(array)
    assert len(states) == 10 and set(states.values()) == {"COMPLETED"}
    sbatch_script = next((project.root / ".logbook" / "slurm").glob(f"{array}_submission.sh"), None) or \
        next((project.root / ".logbook" / "slurm").glob("*_submission.sh"))
    assert "--array=0-9%4" in sbatch_script.read_text()
    run = runs[0]
    env = json.loads(run["environment"])
    assert env["slurm"]["job_id"] == array and env["slurm"]["array_index"] == int(run["slurm_job_id"].split("_")[1])
    assert env["slurm"]["node"] == run["node"] and env["slurm"]["gpu_models"] == []
    assert [n for n, _, _ in project.points(run["id"])] == ["score"] * 3
    verdict = json.loads(project.logbook("verdict", slug, "--json").stdout)
    assert verdict["verdict"] == "positive"
    status = project.logbook("status", slug).stdout
    assert f"slurm {run['slurm_job_id']} COMPLETED {run['node']}" in status


def test_cancel_takes_pending_and_running_tasks_off_the_queue(slurm_project):
    project = slurm_project
    slug = command_entry(project, "stop", {"baseline": {"base": 0.1, "sleep": 300}, "cand": {"base": 0.2, "sleep": 300}},
                         extra="slurm:\n  time: 10\n  max_running: 2\n")
    project.logbook("run", slug, "--executor", "slurm", env=FAST_POLL)
    runs = wait_for(lambda: (lambda rs: rs if sum(r["slurm_state"] == "RUNNING" for r in rs) == 2 else None)(project.runs()),
                    timeout=60, interval=0.5, what="two tasks running (the cap), eight pending")
    array = runs[0]["slurm_job_id"].split("_")[0]
    assert len(squeue("-j", array, "-r")) == 10
    counts = json.loads(project.logbook("cancel", slug, "--json").stdout)
    assert counts == {"stopping": 10}
    wait_for(lambda: not squeue("-j", array), timeout=30, interval=0.5, what="the array to leave the queue")
    runs = wait_for(lambda: settled(project, 10), timeout=60, interval=0.5, what="runs to be recorded cancelled")
    assert {r["status"] for r in runs} == {"cancelled"}
    assert {r["slurm_state"] for r in runs} == {"CANCELLED"}
    assert set(sacct(array).values()) == {"CANCELLED"}


def test_worker_killed_and_restarted_collects_every_result_exactly_once(slurm_project):
    project = slurm_project
    slug = command_entry(project, "restart", {"baseline": {"base": 0.1, "sleep": 4}, "cand": {"base": 0.5, "sleep": 4}},
                         extra="slurm:\n  time: 5\n  max_running: 3\n")
    project.logbook("run", slug, "--executor", "slurm", "--no-worker")
    first = project.start_worker("--executor", "slurm", "--slurm-poll", "0.5", "--idle-exit", "30")
    wait_for(lambda: sum(r["slurm_state"] == "RUNNING" for r in project.runs()) >= 1, timeout=60, interval=0.3,
             what="a task running")
    runs = project.runs()
    assert {r["slurm_state"] for r in runs} >= {"RUNNING", "PENDING"}
    first.send_signal(signal.SIGKILL)
    first.wait()
    array = runs[0]["slurm_job_id"].split("_")[0]
    assert squeue("-j", array, "-r")  # the jobs live on without the worker
    time.sleep(6)  # some tasks end while no worker watches
    second = project.start_worker("--executor", "slurm", "--slurm-poll", "0.5", "--once")
    output, _ = second.communicate(timeout=180)
    assert "re-attached to 10 Slurm tasks (10 runs)" in output
    runs = project.runs()
    assert [r["status"] for r in runs] == ["succeeded"] * 10, output
    assert len({r["slurm_job_id"] for r in runs}) == 10 and {r["slurm_job_id"].split("_")[0] for r in runs} == {array}
    assert all(r["attempt"] == 1 and r["slurm_requeues"] == 0 for r in runs)
    assert len(sacct(array)) == 10  # nothing was submitted again
    assert all(len(project.points(r["id"])) == 3 for r in runs)
    assert output.count(" succeeded") == 10  # each run settled once, by the second worker


def test_task_killed_by_signal_is_failed_with_its_log_tail(slurm_project):
    project = slurm_project
    one_run_on_slurm(project, "killed", {"base": 0.1, "sleep": 300}, minutes=10)
    (run,) = wait_for(lambda: running_alone(project), timeout=60, interval=0.3, what="the task to run")
    wait_for(lambda: Path(run["log_path"]).exists() and "slurm job" in Path(run["log_path"]).read_text(), timeout=30)
    subprocess.run(["scancel", "--signal=KILL", run["slurm_job_id"]], check=True)
    run = wait_for(lambda: settled(project, 10), timeout=60, interval=0.5, what="the killed run to be recorded")[0]
    assert run["status"] == "failed", run
    assert run["slurm_state"] in ("FAILED", "CANCELLED") and run["slurm_requeues"] == 0
    assert f"slurm job {run['slurm_job_id']} ended {run['slurm_state']}" in run["error_tail"]
    # the run's own log (its first line names the job) and Slurm's stderr for the task
    assert "log tail:\n--- slurm job " + run["slurm_job_id"].split("_")[0] in run["error_tail"], run["error_tail"]
    from logbook.tui.data import run_view

    store = open_store(project.db)
    view = run_view(store, run["id"])  # what the terminal app's run screen shows
    store.dispose()
    assert (view["slurm"]["job_id"], view["slurm"]["state"], view["slurm"]["node"]) == (
        run["slurm_job_id"], run["slurm_state"], run["node"])
    assert view["slurm"]["log"] and view["slurm"]["log"] in run["error_tail"]


def test_scontrol_requeue_of_a_running_task_gives_one_result(slurm_project):
    project = slurm_project
    # the first start sleeps long enough to be requeued while it runs, however late RUNNING is seen
    one_run_on_slurm(project, "requeue", {"base": 0.1, "first_start_sleep": 120})
    (run,) = wait_for(lambda: running_alone(project), timeout=60, interval=0.3, what="the task to run")
    time.sleep(1)
    subprocess.run(["scontrol", "requeue", run["slurm_job_id"]], check=True)
    # Slurm holds a requeued job back for about two minutes (reason BeginTime): let it start sooner, but
    # not within seconds of the kill. slurmd refuses to launch a job again in the second its previous
    # start was killed ("Job 874 already killed, do not launch batch job"), and the job then ends
    # FAILED, which the hold exists to avoid.
    wait_for(lambda: squeue("-j", run["slurm_job_id"], "-o", "%T") == ["PENDING"], timeout=30, interval=0.3)
    time.sleep(3)
    subprocess.run(["scontrol", "update", f"JobId={run['slurm_job_id']}", "StartTime=now"], check=True)
    run = wait_for(lambda: settled(project, 10), timeout=120, interval=0.5, what="the requeued task to finish")[0]
    assert run["status"] == "succeeded" and run["slurm_state"] == "COMPLETED", (run["status"], run["slurm_state"], run["error_tail"])
    assert run["attempt"] == 1 and run["slurm_requeues"] == 0
    assert len(project.points(run["id"])) == 3  # the first start's points were not kept twice
    log = Path(run["log_path"]).read_text()
    assert "(start 2)" in log and log.count("step 2 score") == 1 + ("(start 1)" in log and log.index("(start 2)") > log.index("step 2 score"))
    env = json.loads(run["environment"])
    assert env["slurm"]["restart_count"] == 1


def test_time_limit_exceeded_comes_back_timeout_and_is_requeued_within_its_bound(slurm_project):
    project = slurm_project
    one_run_on_slurm(project, "timeout", {"base": 0.1, "hang": "first start"}, minutes=1, max_requeues=1,
                     candidate={"base": 0.2, "hang": "always"})
    runs = wait_for(lambda: settled(project, 10), timeout=400, interval=1.0, what="both runs to end")
    once = next(r for r in runs if r["arm"] == "baseline" and r["status"] != "cancelled")
    always = next(r for r in runs if r["arm"] == "cand" and r["status"] != "cancelled")
    # hung past its 1-minute limit on its first start: TIMEOUT, requeued once, then it finished
    assert once["status"] == "succeeded" and once["slurm_requeues"] == 1 and once["attempt"] == 2
    assert once["slurm_state"] == "COMPLETED"
    # hung every time: requeued once (its bound), then failed
    assert always["status"] == "failed" and always["slurm_requeues"] == 1 and always["attempt"] == 2
    assert always["slurm_state"] == "TIMEOUT"
    assert "ended TIMEOUT" in always["error_tail"] and "not requeued: 1 automatic requeues used" in always["error_tail"]
    status = project.logbook("status", "timeout").stdout
    assert "requeued 1x" in status
    assert "(2 automatic Slurm requeues)" in project.logbook("show", "timeout").stdout


def test_builtin_trainer_batches_of_seeds_are_one_array_task_each(slurm_project):
    project = slurm_project
    slug = project.entry("digits", "digits", {"baseline": {"steps": 20}, "wide": {"steps": 20, "hidden": 96}},
                         metric="eval_acc")
    project.logbook("run", slug, "--executor", "slurm", "--batch", "5", "--time", "10", env=FAST_POLL)
    runs = wait_for(lambda: settled(project, 10), timeout=300, interval=1.0, what="the digits runs to end on Slurm")
    assert [r["status"] for r in runs] == ["succeeded"] * 10, [r["error_tail"] for r in runs]
    tasks = {r["slurm_job_id"] for r in runs}
    assert len(tasks) == 2 and len({t.split("_")[0] for t in tasks}) == 1  # one array, one task per arm's batch
    for task in tasks:
        batch = [r for r in runs if r["slurm_job_id"] == task]
        assert len(batch) == 5 and {r["arm"] for r in batch} in ({"baseline"}, {"wide"})
        assert {r["batch_id"] for r in batch} == {task} and {r["batch_size"] for r in batch} == {5}
    assert len(sacct(runs[0]["slurm_job_id"].split("_")[0])) == 2
    assert all(0 < r["final_metrics"]["eval_acc"] <= 1 for r in runs)
    assert all(json.loads(r["determinism"])["batch_size"] == 5 for r in runs)


def test_interrupted_submission_is_found_by_name_cancelled_and_submitted_again(slurm_project):
    """A worker killed between claiming runs and recording sbatch's answer: the next worker finds
    the job by its name, cancels it and submits the runs again, so nothing runs twice."""
    import sqlite3

    project = slurm_project
    slug = command_entry(project, "interrupted", {"baseline": {"base": 0.1}, "cand": {"base": 0.3}})
    project.logbook("run", slug, "--executor", "slurm", "--no-worker")
    stray = subprocess.run(["sbatch", "--parsable", "--hold", "-o", "/dev/null", "--job-name", "logbook-abc123def456", "--wrap", "sleep 60"],
                           capture_output=True, text=True, check=True).stdout.strip()
    con = sqlite3.connect(project.db)
    con.execute("INSERT INTO worker (host, pid, slots, status, started_at, heartbeat_at) "
                "VALUES ('elsewhere', 1, '[]', 'crashed', '2026-01-01', '2026-01-01')")
    con.execute("UPDATE run SET status = 'running', worker_id = 1, slurm_job_id = 'submitting:abc123def456', "
                "slurm_state = 'SUBMITTING'")
    con.commit()
    con.close()
    worker = project.start_worker("--executor", "slurm", "--slurm-poll", "0.5", "--once")
    output, _ = worker.communicate(timeout=180)
    assert "queued again 10 runs whose submission was interrupted" in output
    assert sacct(stray) == {stray: "CANCELLED"}
    runs = project.runs()
    assert [r["status"] for r in runs] == ["succeeded"] * 10, output
    assert len({r["slurm_job_id"].split("_")[0] for r in runs}) == 1 and stray not in {r["slurm_job_id"] for r in runs}


def test_preempted_task_is_requeued_and_finishes(slurm_project):
    project = slurm_project
    cpus = subprocess.run(["sinfo", "-h", "-p", "debug", "-o", "%c"], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    one_run_on_slurm(project, "preempt", {"base": 0.1, "hang": "first start"}, minutes=5, cpus=int(cpus))
    (run,) = wait_for(lambda: running_alone(project), timeout=60, interval=0.3, what="the task to run")
    first_task = run["slurm_job_id"]
    wait_for(lambda: (Path(run["run_dir"]) / "hung-once").exists(), timeout=60, interval=0.3,
             what="the trainer to be hanging in its first start")
    urgent = subprocess.run(["sbatch", "--parsable", "-p", "urgent", "-c", cpus, "-o", "/dev/null", "--wrap", "sleep 3"],
                            capture_output=True, text=True, check=True).stdout.strip()
    run = wait_for(lambda: settled(project, 10), timeout=120, interval=0.5, what="the preempted run to finish")[0]
    assert run["status"] == "succeeded" and run["slurm_requeues"] == 1 and run["attempt"] == 2, run["error_tail"]
    assert run["slurm_job_id"] != first_task  # it went out again, in a new array
    assert sacct(first_task.split("_")[0])[first_task] == "PREEMPTED"
    assert sacct(urgent)[urgent] == "COMPLETED"
