"""Issue 13's record fixes, through the CLI on real logbooks in real git repositories: commands
are shown and confirmed before their first run, the logbook's own folder never makes a tree
dirty, the recorded diff can be printed and applied, a run that never reports the metric fails,
and an audit's fresh seeds stay hidden until it ends."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import sys
import textwrap

from tests.conftest import git, wait_for


def trainer_script(project, body: str) -> dict:
    (project.root / "train.py").write_text(textwrap.dedent(body))
    git(project.root, "add", "train.py")
    git(project.root, "commit", "-q", "-m", "train.py")
    return {"command": f"{sys.executable} train.py --seed {{seed}} --lr {{lr}}", "metrics": {"score": "score: ([0-9.eE+-]+)"}}


SCORE = """\
import sys
print("score:", 1.0 + float(sys.argv[4]))
"""


def queued(project) -> int:
    return sum(r["status"] == "queued" for r in project.runs())


def test_an_unconfirmed_command_is_shown_and_refused_without_a_terminal(project):
    slug = project.entry("cmd", trainer_script(project, SCORE), {"baseline": {"lr": 0.1}, "cand": {"lr": 0.2}})
    out = project.logbook("run", slug, "--no-worker", check=False, confirm=False)
    assert out.returncode == 2
    seed = json.loads(project.logbook("show", slug, "--json").stdout)["planned_seeds"][0]
    # the exact command line per arm, with the first seed filled in, before anything runs
    assert f"train.py --seed {seed} --lr 0.1" in out.stderr and f"train.py --seed {seed} --lr 0.2" in out.stderr
    assert "10 runs" in out.stderr
    assert out.stderr.strip().splitlines()[-1].endswith("expected a confirmation: read them, then run again with --yes")
    assert queued(project) == 0

    project.logbook("run", slug, "--no-worker", "--yes", confirm=False)
    assert queued(project) == 10
    # remembered per command: requeueing the same commands asks nothing
    project.logbook("cancel", slug)
    again = project.logbook("requeue", slug, "--no-worker", confirm=False)
    assert "first time" not in again.stderr and queued(project) == 10
    con = sqlite3.connect(project.db)
    assert con.execute("SELECT count(*), min(kind) FROM confirmed_command").fetchone() == (2, "command")
    con.close()


def test_a_changed_command_asks_again(project):
    spec = trainer_script(project, SCORE)
    project.entry("one", spec, {"baseline": {"lr": 0.1}, "cand": {"lr": 0.2}})
    project.logbook("run", "one", "--no-worker", "--yes", confirm=False)
    changed = {**spec, "command": spec["command"] + " --extra"}
    project.entry("two", changed, {"baseline": {"lr": 0.1}, "cand": {"lr": 0.2}})
    out = project.logbook("run", "two", "--no-worker", check=False, confirm=False)
    assert out.returncode == 2 and "--extra" in out.stderr
    # an entry whose commands are the ones already confirmed is not asked about
    project.entry("three", spec, {"baseline": {"lr": 0.1}, "cand": {"lr": 0.2}})
    assert project.logbook("run", "three", "--no-worker", confirm=False).returncode == 0


def test_a_module_trainer_is_confirmed_and_an_installed_one_is_not(project):
    project.entry("mod", "fakes:nothing", {"baseline": {}, "cand": {}})
    out = project.logbook("run", "mod", "--no-worker", check=False, confirm=False)
    assert out.returncode == 2 and "python: fakes:nothing(config={}, seed=" in out.stderr
    project.entry("plugin", "seq-gating", {"baseline": {"cell": "lstm"}, "cand": {"cell": "gated"}})
    assert project.logbook("run", "plugin", "--no-worker", confirm=False).returncode == 0


def test_a_person_at_a_terminal_is_asked(project):
    slug = project.entry("tty", trainer_script(project, SCORE), {"baseline": {"lr": 0.1}, "cand": {"lr": 0.2}})
    for answer, expected_code, expected_queued in ((b"n\n", 1, 0), (b"y\n", 0, 10)):
        leader, follower = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "logbook", "--db", str(project.db), "run", slug, "--no-worker"],
                                cwd=project.root, stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(follower)
        os.write(leader, answer)
        _, err = proc.communicate(timeout=60)
        os.close(leader)
        assert proc.returncode == expected_code, err
        assert b"Run them?" in err
        assert queued(project) == expected_queued


ENTRY = ("title: clean\nhypothesis: h\nmetric: score\ngoal: maximize\nmin_effect: 0.1\nseeds: 5\n"
         "trainer: fakes:nothing\narms:\n  baseline: {}\n  cand: {}\n")


def test_init_ignores_its_folder_and_registration_in_a_clean_repo_is_clean(project, tmp_path):
    project.logbook("init")
    assert (project.root / ".logbook" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert git(project.root, "status", "--porcelain") == ""
    (tmp_path / "clean.yaml").write_text(ENTRY)  # the entry file lives outside the repository
    project.logbook("new", tmp_path / "clean.yaml", "--register")
    shown = json.loads(project.logbook("show", "clean", "--json").stdout)["git"]
    assert shown["dirty"] is False and shown["untracked"] == [] and shown["tree"] == "clean tree"


def test_a_logbook_elsewhere_in_the_repo_never_counts_as_a_change(project):
    db = project.root / "results" / "lb.db"  # not the default folder: no .gitignore is written there
    (project.root / "e.yaml").write_text(ENTRY.replace("title: clean", "title: e"))
    git(project.root, "add", "e.yaml")
    git(project.root, "commit", "-q", "-m", "entry")
    subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), "new", "e.yaml", "--register"], cwd=project.root,
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    detail = json.loads(subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), "show", "e", "--json"],
                                       cwd=project.root, check=True, capture_output=True, text=True).stdout)
    assert detail["git"]["dirty"] is False and detail["git"]["untracked"] == []


def test_show_diff_prints_a_patch_that_git_applies(project, tmp_path):
    (project.root / "fakes.py").write_text((project.root / "fakes.py").read_text() + "\n# tuned by hand\nLR = 0.3\n")
    (project.root / "notes.txt").write_text("scratch\n")
    project.entry("dirty", "fakes:nothing", {"baseline": {}, "cand": {}})
    commit = git(project.root, "rev-parse", "HEAD")
    out = project.logbook("show", "dirty", "--diff")
    assert out.stdout.startswith("diff --git a/fakes.py b/fakes.py")
    assert "1 untracked files" not in out.stdout and "notes.txt" in out.stderr and "dirty.yaml" in out.stderr
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    git(clone, "checkout", "-q", commit)
    applied = subprocess.run(["git", "apply", "-"], cwd=clone, input=out.stdout, text=True, capture_output=True)
    assert applied.returncode == 0, applied.stderr
    assert (clone / "fakes.py").read_text() == (project.root / "fakes.py").read_text()
    card = project.logbook("show", "dirty").stdout
    assert f"dirty ({out.stdout.count(chr(10))} diff lines, 2 untracked files)" in card  # the app's wording too


def test_a_run_that_never_reports_the_metric_fails_with_its_log(project):
    spec = trainer_script(project, 'print("test loss: 0.5")\n')
    project.entry("nometric", spec, {"baseline": {"lr": 0.1}, "cand": {"lr": 0.2}})
    project.logbook("run", "nometric", "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=180)
    runs = project.runs()
    assert {r["status"] for r in runs} == {"failed"}
    assert all(r["error_tail"].startswith("no value of score in the output; log tail:") for r in runs)
    assert all("test loss: 0.5" in r["error_tail"] for r in runs)


def test_audit_seeds_stay_hidden_until_the_audit_ends(project):
    project.entry("aud", "fakes:noisy", {"baseline": {"effect": 0.0}, "cand": {"effect": 3.0}})
    project.logbook("run", "aud", "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=180)
    project.logbook("audit", "aud", "--seeds", "5", "--no-worker")
    status = json.loads(project.logbook("status", "aud", "--json").stdout)
    audit_runs = [r for r in status["runs"] if r["origin"] == "audit"]
    assert len(audit_runs) == 10
    assert all(r["seed"] is None and r["seed_hidden"] == "hidden until the audit ends" and r["log_path"] is None
               for r in audit_runs)
    con = sqlite3.connect(project.db)
    secret = {s for (s,) in con.execute("SELECT seed FROM run WHERE audit_id IS NOT NULL")}
    con.close()
    text = project.logbook("status", "aud").stdout
    assert not any(str(seed) in text for seed in secret)
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=180)
    project.logbook("audit", "aud", "--status")  # concludes it
    wait_for(lambda: all(r["seed"] is not None for r in json.loads(project.logbook("status", "aud", "--json").stdout)["runs"]),
             timeout=30, what="seeds revealed after the audit")
