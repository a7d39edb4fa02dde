"""Audits of past claims on fresh committed seeds, at the registered commit; exact reruns."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime

import numpy as np

from tests.conftest import git, link_runs

VERSIONED = "VALUE = {value}\n\ndef train(config, ctx):\n    return {{'score': VALUE + config.get('offset', 0.0) + ctx.seed % 7 / 100}}\n"


def commitment_of(seeds, salt):
    text = json.dumps({"salt": salt, "seeds": sorted(seeds)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def insert_lucky_original(project, slug):
    """Write the entry's original runs as a lucky pick of seeds would have left them: the
    candidate looks clearly better although the trainer has no true effect."""
    con = sqlite3.connect(project.db)
    entry_id, seeds = con.execute("SELECT id, planned_seeds FROM hypothesis WHERE slug = ?", (slug,)).fetchone()
    arms = dict(con.execute("SELECT name, id FROM arm WHERE hypothesis_id = ?", (entry_id,)).fetchall())
    base = [-0.3, 0.1, -0.2, 0.2, 0.0]
    for arm, shift in (("baseline", 0.0), ("cand", 1.5)):
        for seed, value in zip(json.loads(seeds), base):
            con.execute("INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, ended_at, final_metrics, cancel_requested)"
                        " VALUES (?, ?, 'planned', 'succeeded', 1, '2026-01-01', '2026-01-01', ?, 0)",
                        (arms[arm], seed, json.dumps({"score": value + shift})))
    con.commit()
    ids = [r[0] for r in con.execute("SELECT run.id FROM run JOIN arm ON arm.id = run.arm_id WHERE hypothesis_id = ?", (entry_id,))]
    con.close()
    link_runs(project.db, ids)  # as the worker would have recorded them


def test_a_lucky_claim_with_no_true_effect_does_not_survive_the_audit(project):
    slug = project.entry("lucky", "fakes:noisy", {"baseline": {"effect": 0.0, "sd": 0.2}, "cand": {"effect": 0.0, "sd": 0.2}})
    insert_lucky_original(project, slug)
    original = json.loads(project.logbook("verdict", slug, "--json").stdout)
    assert original["verdict"] == "positive"
    started = json.loads(project.logbook("audit", slug, "--no-worker", "--json").stdout)
    assert started["status"] == "running" and started["seeds"] is None and started["salt"] is None
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    report = json.loads(project.logbook("audit", slug, "--status", "--json").stdout)
    assert report["status"] == "concluded" and report["outcome"] in ("refuted", "inconclusive")
    # With sd 0.2 the audit's upper bound sits near 0.25, far below the claimed 1.5: refuted
    # (the other outcome would need the mean difference to exceed 1.2, about ten standard errors).
    assert report["outcome"] == "refuted"
    assert report["audit_verdict"]["comparisons"][0]["ci_high"] < original["effect"]
    assert report["original_verdict"]["verdict"] == "positive"
    assert "power 0.9" in report["seeds_rule"]
    # the original verdict is untouched: audit runs are never pooled with it
    assert json.loads(project.logbook("verdict", slug, "--json").stdout)["n_candidate"] == 5


def test_a_true_large_effect_replicates_and_the_commitment_holds(project):
    slug = project.entry("real", "fakes:noisy", {"baseline": {"effect": 0.0, "sd": 0.5}, "cand": {"effect": 3.0, "sd": 0.5}})
    project.logbook("run", slug, "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    assert json.loads(project.logbook("verdict", slug, "--json").stdout)["verdict"] == "positive"
    started = json.loads(project.logbook("audit", slug, "--no-worker", "--json").stdout)
    con = sqlite3.connect(project.db)
    stored, created = con.execute("SELECT commitment, created_at FROM audit").fetchone()
    assert stored == started["commitment"] and len(stored) == 64
    assert con.execute("SELECT count(*) FROM run WHERE audit_id IS NOT NULL AND started_at IS NOT NULL").fetchone()[0] == 0
    con.close()
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    report = json.loads(project.logbook("audit", slug, "--status", "--json").stdout)
    assert report["outcome"] == "replicated" and report["problems"] == []
    assert commitment_of(report["seeds"], report["salt"]) == stored
    assert not set(report["seeds"]) & set(report["original_seeds"])
    con = sqlite3.connect(project.db)
    first_start = con.execute("SELECT min(started_at) FROM run WHERE audit_id IS NOT NULL").fetchone()[0]
    audit_seeds = sorted({s for (s,) in con.execute("SELECT seed FROM run WHERE audit_id IS NOT NULL")})
    con.close()
    assert datetime.fromisoformat(created) <= datetime.fromisoformat(first_start)
    assert audit_seeds == sorted(report["seeds"])
    text = project.logbook("audit", slug, "--status").stdout
    assert "REPLICATED" in text and report["salt"] in text


def test_the_audit_runs_the_registered_commit_with_its_dirty_diff(project):
    (project.root / "versioned.py").write_text(VERSIONED.format(value=1.0))
    git(project.root, "add", "versioned.py")
    git(project.root, "commit", "-q", "-m", "v1")
    (project.root / "versioned.py").write_text(VERSIONED.format(value=2.0))  # dirty at registration
    slug = project.entry("past", "versioned:train", {"baseline": {}, "cand": {"offset": 1.0}})
    registered = git(project.root, "rev-parse", "HEAD")
    (project.root / "versioned.py").write_text(VERSIONED.format(value=100.0))  # later code, committed
    git(project.root, "commit", "-q", "-am", "v2")
    project.logbook("audit", slug, "--seeds", "5", "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    con = sqlite3.connect(project.db)
    rows = con.execute("SELECT final_metrics, git_commit, workdir, status FROM run WHERE audit_id IS NOT NULL").fetchall()
    con.close()
    assert len(rows) == 10 and all(status == "succeeded" for *_, status in rows)
    scores = [json.loads(m)["score"] for m, *_ in rows]
    assert all(2.0 <= s < 3.1 for s in scores)  # the registered (dirty) code, not 100 from the later commit
    assert {commit for _, commit, _, _ in rows} == {registered}
    assert all("checkouts" in workdir for _, _, workdir, _ in rows)


def test_an_audit_whose_commit_is_gone_is_refused(project):
    (project.root / "extra.txt").write_text("a\n")
    git(project.root, "add", "extra.txt")
    git(project.root, "commit", "-q", "-m", "to be rewritten")
    slug = project.entry("gone", "fakes:noisy", {"baseline": {}, "cand": {}})
    registered = git(project.root, "rev-parse", "HEAD")
    git(project.root, "reset", "-q", "--hard", "HEAD~1")
    git(project.root, "reflog", "expire", "--expire=now", "--all")
    git(project.root, "gc", "-q", "--prune=now")
    out = project.logbook("audit", slug, check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert f"commit {registered[:12]} of {slug} is not in" in out.stderr
    con = sqlite3.connect(project.db)
    assert con.execute("SELECT count(*) FROM audit").fetchone()[0] == 0
    con.close()


def test_exact_reruns_are_bitwise_identical_for_a_seeded_trainer(project):
    slug = project.entry("exact", "fakes:noisy", {"baseline": {}, "cand": {"effect": 1.0}})
    project.logbook("run", slug, "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    report = json.loads(project.logbook("rerun", slug, "--check-determinism", "3", "--no-worker", "--json").stdout)
    assert report["pending"] == 3
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    first = report["reruns"][0]
    again = json.loads(project.logbook("rerun", first["run"], "--compare", first["rerun"], "--json").stdout)
    assert again["result"] == "bitwise identical" and again["first_difference"] is None
    one = json.loads(project.logbook("rerun", "2", "--wait", "--json").stdout)
    assert one["result"] == "bitwise identical" and one["seed"] == project.runs()[1]["seed"]
    con = sqlite3.connect(project.db)
    origins = dict(con.execute("SELECT seed_origin, count(*) FROM run GROUP BY seed_origin").fetchall())
    con.close()
    assert origins == {"planned": 10, "rerun": 4}
    assert json.loads(project.logbook("verdict", slug, "--json").stdout)["n_candidate"] == 5  # reruns never count


def test_a_nondeterministic_trainer_is_reported_different_and_flagged_in_deterministic_mode(project):
    slug = project.entry("nondet", "fakes:nondeterministic", {"baseline": {}, "cand": {}}, extra="deterministic: true\n")
    project.logbook("run", slug, "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    out = project.logbook("rerun", slug, "--check-determinism", "2", "--wait", "--json")
    report = json.loads(out.stdout)
    assert report["different"] == 2 and report["deterministic_mode_violated"] is True
    difference = report["reruns"][0]["first_difference"]
    assert difference["kind"] == "final" and difference["metric"] == "score"
    assert not np.isclose(difference["original"], difference["rerun"])
    assert "DETERMINISM VIOLATED" in out.stderr


def test_bad_rerun_targets(project):
    project.logbook("init")
    out = project.logbook("rerun", "abc", check=False)
    assert out.returncode == 2 and "expected a run id" in out.stderr
    out = project.logbook("rerun", "999", check=False)
    assert (out.returncode, out.stderr) == (2, "RUN: no run with id 999\n")


def test_outcome_rule():
    from logbook.entries.audit import _outcome

    claim = {"effect": 1.5}
    assert _outcome(claim, {"verdict": "positive", "ci_high": 2.0}) == "replicated"
    assert _outcome(claim, {"verdict": "negative", "ci_high": 0.05}) == "refuted"
    assert _outcome(claim, {"verdict": "inconclusive", "ci_high": 1.2}) == "refuted"  # the claim was inflated
    assert _outcome(claim, {"verdict": "inconclusive", "ci_high": 1.7}) == "inconclusive"


def test_the_worker_concludes_an_audit_when_its_last_run_ends(project):
    """Nobody asks for `audit --status`: the worker that ends the audit's last run concludes it,
    revealing seeds and salt that match the commitment."""
    slug = project.entry("selfclosing", "fakes:noisy", {"baseline": {"effect": 0.0, "sd": 0.5}, "cand": {"effect": 3.0, "sd": 0.5}})
    insert_lucky_original(project, slug)
    started = json.loads(project.logbook("audit", slug, "--no-worker", "--seeds", "5", "--json").stdout)
    con = sqlite3.connect(project.db)
    assert con.execute("SELECT status, outcome, salt FROM audit").fetchone() == ("running", None, None)
    con.close()
    out, _ = project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    assert f"audit {started['audit']} of entry" in out and "concluded" in out
    con = sqlite3.connect(project.db)
    status, outcome, salt, seeds, commit = con.execute("SELECT status, outcome, salt, seeds, commitment FROM audit").fetchone()
    con.close()
    assert status == "concluded" and outcome == "replicated"
    assert commitment_of(json.loads(seeds), salt) == commit == started["commitment"]


def test_cancelling_an_audits_queued_runs_concludes_it(project):
    slug = project.entry("cancelled", "fakes:noisy", {"baseline": {"effect": 0.0, "sd": 0.5}, "cand": {"effect": 3.0, "sd": 0.5}})
    insert_lucky_original(project, slug)
    project.logbook("audit", slug, "--no-worker", "--seeds", "5", "--json")
    project.logbook("cancel", slug)
    con = sqlite3.connect(project.db)
    assert con.execute("SELECT status, outcome FROM audit").fetchone() == ("concluded", "inconclusive")
    assert con.execute("SELECT count(*) FROM run WHERE audit_id IS NOT NULL AND status = 'cancelled'").fetchone()[0] == 10
    con.close()
