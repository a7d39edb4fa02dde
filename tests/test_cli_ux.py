"""The CLI as a researcher lives in it: packaged examples, errors that jq can read, progress
without a terminal, seeds batched by default."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys

import yaml

from tests.conftest import wait_for


def test_examples_are_listed_printed_and_valid(cli, tmp_path):
    listed = cli("example")
    assert listed.code == 0 and {"gated-rnn", "demo-gated-rnn", "command-script"} <= {
        line.split()[0] for line in listed.out.splitlines()[:-1]}
    for name in ("gated-rnn", "demo-gated-rnn", "command-script"):
        text = cli("example", name).out
        assert text.startswith("# ") and yaml.safe_load(text)["arms"]
        (tmp_path / f"{name}.yaml").write_text(text)
        assert cli("new", tmp_path / f"{name}.yaml").code == 0, name
    missing = cli("example", "nope")
    assert missing.code == 2 and missing.err.startswith("NAME: no example called 'nope'; expected one of")


def test_errors_under_json_are_json(cli, tmp_path):
    assert cli("init").code == 0
    bad = cli("show", "no-such-entry", "--json")
    assert bad.code == 2
    (line,) = bad.err.strip().splitlines()
    error = json.loads(line)
    assert error["exit_code"] == 2 and "no-such-entry" in error["error"]
    (tmp_path / "e.yaml").write_text("title: t\n")
    problems = cli("new", tmp_path / "e.yaml", "--json")
    parsed = [json.loads(line) for line in problems.err.strip().splitlines()]
    assert problems.code == 2 and all(p["source"] == str(tmp_path / "e.yaml") and p["field"] for p in parsed)
    assert not cli("show", "no-such-entry").err.startswith("{")  # plain text without --json


def test_run_wait_without_a_terminal_prints_each_run_and_a_summary(project):
    slug = project.entry("lines", "fakes:noisy", {"baseline": {}, "cand": {"effect": 1.0}}, seeds=5)
    out = project.logbook("run", slug, "--wait", "--cpu-slots", "2")
    lines = out.stdout.splitlines()
    ended = [line for line in lines if line.startswith("run ") and ("succeeded" in line or "failed" in line)]
    assert len(ended) == 10 and all(" score = " in line and line.endswith(" s)") for line in ended)
    assert any(line.startswith("runs: 10/10 ended") for line in lines)


def test_the_tui_verb_takes_db_too():
    out = subprocess.run([sys.executable, "-m", "logbook", "tui", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--db" in out.stdout


def stop_workers(project) -> None:
    """Stop the detached workers `run` started (batching is a property of the worker)."""
    con = sqlite3.connect(project.db)
    pids = [pid for (pid,) in con.execute("SELECT pid FROM worker WHERE status = 'running'")]
    con.close()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in pids), what="workers to stop")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_run_batches_by_default_and_no_batch_opts_out(project):
    arms = {"baseline": {"steps": 5}, "wide": {"steps": 5, "hidden": 64}}
    project.entry("dig", "digits", arms, seeds=5, metric="eval_acc")
    project.logbook("run", "dig", "--wait", "--cpu-slots", "1")
    assert {r["batch_size"] for r in project.runs()} == {5}  # each arm's five seeds in one process
    stop_workers(project)
    project.entry("one", "digits", arms, seeds=5, metric="eval_acc")
    project.logbook("run", "one", "--no-batch", "--cpu-slots", "1")
    def running_worker():
        con = sqlite3.connect(project.db)
        row = con.execute("SELECT pid FROM worker WHERE status = 'running'").fetchone()
        con.close()
        return row

    (pid,) = wait_for(running_worker, what="the worker `run` started")
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    assert argv[argv.index(b"--batch") + 1] == b"1"  # the worker it started trains one seed per process
    stop_workers(project)
