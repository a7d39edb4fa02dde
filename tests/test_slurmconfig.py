"""Slurm settings: checking a slurm block, where settings come from, and the shared-folder rule.
(The executor itself is tested against a real Slurm in test_slurm.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from logbook.db.engine import open_store
from logbook.db.models import Hypothesis
from logbook.engine.slurm import expand_job_id, parse_sacct, shared_folder_problem
from logbook.errors import InputError
from logbook.entries.slurmconfig import DEFAULTS, check_block, run_settings, time_minutes

SPEC = {"command": f"{sys.executable} train.py", "metrics": {"score": "score: ([0-9.]+)"}}


def test_bad_slurm_block_in_an_entry_file_is_one_line_and_registers_nothing(project):
    (project.root / "bad.yaml").write_text(
        "title: t\nhypothesis: h\nmetric: score\ngoal: maximize\nmin_effect: 0.1\nseeds: 5\n"
        f"trainer: {{command: {sys.executable} x.py, metrics: {{score: 's: (.*)'}}}}\n"
        "arms:\n  a: {x: 1}\n  b: {x: 2}\nslurm:\n  mem: lots\n")
    out = project.logbook("new", "bad.yaml", "--register", check=False)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[0] == "bad.yaml: slurm.mem: expected memory per task such as 4G or 16000M, got 'lots'"
    assert not project.db.exists()  # bad input writes nothing: not even a new logbook


@pytest.mark.parametrize(("block", "message"), [
    ({"partitions": "gpu"}, "slurm.partitions: unknown field"),
    ({"gpus_per_task": -1}, "slurm.gpus_per_task: expected a whole number of GPUs"),
    ({"time": "forever"}, "slurm.time: expected a time limit"),
    ({"sbatch": "--exclusive"}, "slurm.sbatch: expected a list of extra sbatch options"),
    ({"max_running": 0}, "slurm.max_running: expected a whole number of array tasks"),
    ({"shared_fs": "yes"}, "slurm.shared_fs: expected true"),
])
def test_check_block_names_the_field_and_what_was_expected(block, message):
    with pytest.raises(InputError, match=message.replace(".", r"\.", 1)):
        check_block(block, "slurm")


def test_flags_are_named_as_flags():
    with pytest.raises(InputError, match=r"^--cpus-per-task: expected a whole number of CPUs"):
        check_block({"cpus_per_task": 0}, "flags")


@pytest.mark.parametrize(("text", "minutes"), [
    (30, 30), ("30", 30), ("10:30", 11), ("01:00:00", 60), ("2-00", 2880), ("1-02:03", 1563), ("1-00:00:01", 1441),
])
def test_time_limits_in_every_sbatch_format(text, minutes):
    assert time_minutes(text) == minutes


def test_settings_come_from_logbook_toml_then_the_entry_file_then_flags(project):
    (project.root / "logbook.toml").write_text(
        'executor = "slurm"\n[slurm]\npartition = "cpu"\nmem = "8G"\nqos = "low"\nsbatch = ["--exclusive"]\n')
    slug = project.entry("layers", SPEC, {"a": {}, "b": {}}, extra="slurm:\n  partition: gpu\n  gpus_per_task: 1\n")
    store = open_store(project.db)
    with store.session() as session:
        entry = session.exec(select(Hypothesis).where(Hypothesis.slug == slug)).one()
        session.expunge(entry)
    executor, options = run_settings(entry, {"qos": "high", "mem": None}, None)
    assert executor == "slurm"
    assert options == {**DEFAULTS, "partition": "gpu", "mem": "8G", "qos": "high", "sbatch": ["--exclusive"],
                       "gpus_per_task": 1}
    assert run_settings(entry, {}, "local")[0] == "local"
    (project.root / "logbook.toml").write_text('executor = "slurm"\nslurm = 3\n')
    with pytest.raises(InputError, match=r"logbook\.toml: slurm: expected a mapping"):
        run_settings(entry, {}, None)
    store.dispose()


def test_run_without_slurm_client_says_what_to_do(project, tmp_path):
    slug = project.entry("noclient", SPEC, {"a": {}, "b": {}})
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    out = project.logbook("run", slug, "--executor", "slurm", check=False, env={"PATH": str(empty)})
    assert out.returncode == 2
    assert "--executor slurm: sbatch/sacct not found on PATH" in out.stderr
    assert project.runs() == []  # nothing queued


def test_shared_folder_rule():
    assert shared_folder_problem(Path("/tmp/lb/runs"), 1, "tmpfs", False) is None  # one node sees its own /tmp
    problem = shared_folder_problem(Path("/tmp/lb/runs"), 4, "nfs", False)
    assert problem.startswith("--db: the logbook's run folders (/tmp/lb/runs) are under a node-local folder")
    assert "shared_fs: true" in problem
    assert "on a ext4 file system" in shared_folder_problem(Path("/home/me/lb"), 4, "ext4", False)
    assert shared_folder_problem(Path("/home/me/lb"), 4, "nfs4", False) is None
    assert shared_folder_problem(Path("/home/me/lb"), 4, "lustre", False) is None
    assert shared_folder_problem(Path("/scratch/lb"), 4, "ext4", True) is None


def test_sacct_lines_and_collapsed_pending_arrays():
    text = "41_0|COMPLETED|vm|0:0\n41_1|CANCELLED by 0|vm|0:15\n41_[2-4,7%2]|PENDING|None assigned|0:0\n42|FAILED|n1|1:0\n"
    states = parse_sacct(text)
    assert states["41_0"] == {"state": "COMPLETED", "node": "vm", "exit_code": 0, "signal": 0}
    assert states["41_1"]["state"] == "CANCELLED" and states["41_1"]["signal"] == 15
    assert [k for k in states if states[k]["state"] == "PENDING"] == ["41_2", "41_3", "41_4", "41_7"]
    assert states["41_7"]["node"] is None and states["42"]["exit_code"] == 1
    assert expand_job_id("9_[0-2]") == ["9_0", "9_1", "9_2"] and expand_job_id("9_5") == ["9_5"]
