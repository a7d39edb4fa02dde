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
    return dict(line.split("|")[:2] for line in out.stdout.splitlines() if line)


TRAIN = textwrap.dedent(
    """\
    import json, os, sys, time
    cfg = json.loads(os.environ["LOGBOOK_CONFIG"])
    seed = int(sys.argv[1])
    time.sleep(float(cfg.get("sleep", 0)))
    for step in range(3):
        print(f"step {step} score: {cfg['base'] + 0.01 * (seed % 7) + 0.1 * step:.4f}", flush=True)
    """
)


@pytest.fixture
def slurm_project(project, slurm_cluster):
    (project.root / "train.py").write_text(TRAIN)
    yield project
    jobs = {r["slurm_job_id"].split("_")[0] for r in project.runs() if r["slurm_job_id"] and r["slurm_job_id"][0].isdigit()}
    if jobs:
        subprocess.run(["scancel", *sorted(jobs)], capture_output=True)


def command_entry(project, name: str, arms: dict, seeds: int = 5, extra: str = "") -> str:
    spec = {"command": f"{sys.executable} train.py {{seed}}", "metrics": {"score": r"score: ([0-9.]+)"}}
    return project.entry(name, spec, arms, seeds=seeds, extra=extra)


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
