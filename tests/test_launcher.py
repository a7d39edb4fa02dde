"""Runs forked from a pre-started launch server: isolated, seeded and switched per run, killable."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

from tests.conftest import wait_for


def process_of(run: dict) -> dict[str, int]:
    pid, pgid, sid, ppid = map(int, (Path(run["run_dir"]) / "process.txt").read_text().split())
    return {"pid": pid, "pgid": pgid, "sid": sid, "ppid": ppid}


def test_forked_runs_are_separate_and_seeded_per_run_and_a_crash_takes_nothing_down(project):
    project.entry("det", "fakes:switches", {"baseline": {}, "cand": {}}, extra="deterministic: true\n")
    project.entry("crash", "fakes:segfault", {"baseline": {}, "cand": {}})
    project.entry("free", "fakes:switches", {"baseline": {}, "cand": {}})
    for slug in ("det", "crash", "free"):
        project.logbook("run", slug, "--no-worker")
    out = project.start_worker("--once", "--cpu-slots", "1").communicate(timeout=300)[0]
    runs = project.runs()
    con = sqlite3.connect(project.db)
    slug_of = dict(con.execute("SELECT arm.id, hypothesis.slug FROM arm JOIN hypothesis ON hypothesis.id = arm.hypothesis_id"))
    arm_ids = dict(con.execute("SELECT id, arm_id FROM run"))
    con.close()
    by_entry: dict[str, list[dict]] = {}
    for run in runs:
        by_entry.setdefault(slug_of[arm_ids[run["id"]]], []).append(run)

    # A run killed by a signal is that run's crash only; the runs after it on the same slot succeed.
    assert {r["status"] for r in by_entry["crash"]} == {"crashed"}, out
    assert all(r["exit_code"] == -signal.SIGSEGV for r in by_entry["crash"])
    switched = by_entry["det"] + by_entry["free"]
    assert {r["status"] for r in switched} == {"succeeded"}, out

    servers = set()
    for run in switched:
        proc = process_of(run)
        assert proc["pgid"] == proc["pid"] == proc["sid"]  # its own session and process group
        assert proc["pid"] == run["pid"]
        servers.add(proc["ppid"])
        determinism = json.loads(run["determinism"])
        assert determinism["launch"] == "forked from a pre-started interpreter"
        assert determinism["pythonhashseed"] == str(run["seed"] % 2**32)
        recorded = json.loads((Path(run["run_dir"]) / "environment.json").read_text())
        assert recorded["packages"]["numpy"] and json.loads(run["environment"])["packages_sha256"]
    assert len(servers) == 1  # one slot, one launch server, a process per run
    # Determinism switches are per run: the same server ran deterministic and free runs.
    assert {r["final_metrics"]["deterministic"] for r in by_entry["det"]} == {1.0}
    assert {r["final_metrics"]["deterministic"] for r in by_entry["free"]} == {0.0}
    # Seeds are per run: both arms of an entry share seeds and draw the same numbers; seeds differ.
    draws = {}
    for run in switched:
        draws.setdefault(run["seed"], set()).add((run["final_metrics"]["score"], run["final_metrics"]["torch_draw"]))
    assert len(draws) == 10 and all(len(values) == 1 for values in draws.values())
    assert len({next(iter(v)) for v in draws.values()}) == 10


def test_a_forked_run_is_cancelled_with_its_process_group_and_the_server_goes_with_the_worker(project):
    gate = project.root / "never"
    project.entry("wait", "fakes:gated", {"baseline": {"gate": str(gate)}, "cand": {"gate": str(gate)}})
    project.logbook("run", "wait", "--no-worker")
    worker = project.start_worker("--cpu-slots", "1")
    started = wait_for(lambda: [r for r in project.runs() if r["status"] == "running" and r["run_dir"]], timeout=120, what="a running run")
    run = started[0]
    marker = Path(run["run_dir"]) / "started"
    wait_for(marker.exists, timeout=60, what="the trainer to start")
    pid = int(marker.read_text())
    assert pid == run["pid"] and os.getpgid(pid) == pid
    server = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent: the launch server
    assert server != worker.pid
    project.logbook("cancel", "--run", run["id"])
    wait_for(lambda: next(r for r in project.runs() if r["id"] == run["id"])["status"] == "cancelled", timeout=60,
             what="the cancel")
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)

    def gone(p: int) -> bool:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        return state == "Z"

    wait_for(lambda: gone(server), timeout=30, what="the launch server to end with its worker")
