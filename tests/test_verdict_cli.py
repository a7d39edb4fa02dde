"""The verdict verbs: entries (runs written to a real logbook), files of values, and paper tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as st

from sqlmodel import select

from logbook.db.engine import open_store
from logbook.db.models import Run
from logbook.db.queries import arms_of, resolve_entry
from logbook.entries.chain import link_finished_runs

KEYS = ("verdict", "detail", "effect", "ci_low", "ci_high", "interval", "delta", "delta_source", "alpha",
        "alpha_adjusted", "n_baseline", "n_candidate", "excluded_baseline", "excluded_candidate", "seeds_needed",
        "prob_improvement", "sentence")


def write_values(path, values, header="# per-seed val_loss\n"):
    path.write_text(header + "\n".join(str(v) for v in values) + "\n\n")
    return path


def test_files_verdict_json_matches_scipy(cli, tmp_path):
    rng = np.random.default_rng(7)
    b, c = rng.normal(0.50, 0.02, 10), rng.normal(0.49, 0.02, 10)
    fb = write_values(tmp_path / "lstm.txt", list(b) + ["nan"])
    fc = write_values(tmp_path / "gated.txt", c)
    result = cli("verdict", "--baseline-file", fb, "--candidate-file", fc, "--delta", "0.01", "--lower-is-better", "--json")
    assert result.code == 0, result.err
    v = json.loads(result.out)
    assert all(k in v for k in KEYS)
    assert (v["n_baseline"], v["excluded_baseline"], v["interval"], v["delta_source"]) == (10, 1, "welch", "given")
    ref = st.ttest_ind(-c, -b, equal_var=False).confidence_interval(0.9)
    assert (v["ci_low"], v["ci_high"]) == pytest.approx((ref.low, ref.high))
    text = cli("verdict", "--baseline-file", fb, "--candidate-file", fc, "--delta", "0.01", "--lower-is-better")
    assert v["verdict"].upper() in text.out and v["sentence"] in text.out


def test_files_anytime_mode_is_labelled_and_wider(cli, tmp_path):
    rng = np.random.default_rng(8)
    fb = write_values(tmp_path / "b.txt", rng.normal(0, 1, 12))
    fc = write_values(tmp_path / "c.txt", rng.normal(0.5, 1, 12))
    fixed = json.loads(cli("verdict", "--baseline-file", fb, "--candidate-file", fc, "--json").out)
    peek = json.loads(cli("verdict", "--baseline-file", fb, "--candidate-file", fc, "--anytime", "--planned-n", "6", "--json").out)
    assert (fixed["interval"], peek["interval"]) == ("welch", "anytime")
    assert peek["ci_high"] - peek["ci_low"] > fixed["ci_high"] - fixed["ci_low"]
    assert "anytime-valid" in peek["sentence"]


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("1.0\nabc\n", [], "b.txt: line 2: expected one number per line (nan allowed), got 'abc'"),
        ("# only one\n1.0\n", [], "b.txt: --baseline-file: expected at least 2 values, got 1"),
        ("1.0\n2.0\n", ["--alpha", "0.6"], "--alpha: expected a number between 0 and 0.5 (exclusive), got 0.6"),
        ("1.0\n2.0\n", ["--delta", "-1"], "--delta: expected a number ≥ 0 in metric units, or auto, got '-1'"),
    ],
)
def test_files_bad_input(cli, tmp_path, content, extra, message):
    fb = tmp_path / "b.txt"
    fb.write_text(content)
    fc = write_values(tmp_path / "c.txt", [1, 2, 3, 4, 5])
    result = cli("verdict", "--baseline-file", fb, "--candidate-file", fc, *extra)
    assert result.code == 2 and result.err.count("\n") == 1
    assert result.err.strip().endswith(message)


def test_audit_claim(cli):
    result = cli("audit-claim", "--baseline", "0.120,0.010,2", "--candidate", "0.112,0.009,2", "--lower-is-better", "--delta", "0.01", "--json")
    v = json.loads(result.out)
    assert result.code == 0 and v["verdict"] == "inconclusive" and v["detail"].startswith("too few seeds")
    strong = json.loads(cli("audit-claim", "--baseline", "0.80,0.01,10", "--candidate", "0.85,0.01,10", "--json").out)
    assert strong["verdict"] == "positive" and strong["delta_source"] == "default"
    assert strong["prob_improvement"] == pytest.approx(st.norm.cdf(0.05 / np.hypot(0.01, 0.01)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "0.8,0.01"], "--baseline: expected MEAN,SD,N (e.g. 0.812,0.014,5), got '0.8,0.01'"),
        (["--baseline", "0.8,-0.01,5"], "--baseline: SD: expected a standard deviation ≥ 0, got '-0.01'"),
        (["--baseline", "0.8,0.01,1"], "--baseline: N: expected at least 2 seeds, got 1"),
        (["--baseline", "0.8,0.01,5", "--alpha", "0.5"], "--alpha: expected a number between 0 and 0.5 (exclusive), got 0.5"),
    ],
)
def test_audit_claim_bad_input(cli, args, message):
    result = cli("audit-claim", "--candidate", "0.85,0.01,10", *args)
    assert (result.code, result.err) == (2, message + "\n")


def test_verdict_needs_an_entry_or_two_files(cli):
    result = cli("verdict")
    assert result.code == 2 and "expected an ENTRY" in result.err


@pytest.fixture
def registered(cli, example_file, db_path):
    assert cli("new", example_file, "--register").code == 0
    return db_path


def add_runs(db_path, arm_name, values, *, status="succeeded", origin="planned", predictions=None):
    store = open_store(db_path)
    try:
        with store.session() as session:
            entry = resolve_entry(session, "1")
            arm = next(a for a in arms_of(session, entry.id) if a.name == arm_name)
            seeds = list(entry.planned_seeds)
            before = len(session.exec(select(Run.id).where(Run.arm_id == arm.id)).all())  # each call adds new seeds
            runs = []
            for i, value in enumerate(values):
                k = before + i
                metrics = None if value is None else {"val_loss": value}
                runs.append(Run(arm_id=arm.id, seed=seeds[k % len(seeds)] + 1_000_003 * (k // len(seeds)), seed_origin=origin,
                                status=status if value is None or np.isfinite(value) else "diverged",
                                final_metrics=metrics, wall_time_s=2.0,
                                predictions_path=None if predictions is None else str(predictions[i])))
            session.add_all(runs)
            session.flush()
            link_finished_runs(session.connection(), [run.id for run in runs])
            session.commit()
    finally:
        store.dispose()


def test_entry_verdict_from_runs(cli, registered):
    rng = np.random.default_rng(11)
    b, c = rng.normal(0.50, 0.02, 10), rng.normal(0.40, 0.02, 10)
    add_runs(registered, "baseline", b)
    add_runs(registered, "gated", c)
    result = cli("verdict", "1", "--json")
    assert result.code == 0, result.err
    v = json.loads(result.out)
    assert v["verdict"] == "positive" and v["interval"] == "welch" and v["family_size"] == 1
    assert v["comparisons"][0]["candidate_name"] == "gated" and v["arms"]["baseline"]["mean_wall_time_s"] == 2.0
    ref = st.ttest_ind(-c, -b, equal_var=False).confidence_interval(0.9)
    assert (v["ci_low"], v["ci_high"]) == pytest.approx((ref.low, ref.high))
    listed = json.loads(cli("list", "--json").out)["entries"][0]
    assert listed["verdict"] == "positive" and listed["runs"] == {"succeeded": 20}


def test_unfinished_plan_uses_the_anytime_interval(cli, registered):
    rng = np.random.default_rng(12)
    add_runs(registered, "baseline", rng.normal(0.5, 0.02, 6))
    add_runs(registered, "gated", rng.normal(0.5, 0.02, 6))
    v = json.loads(cli("verdict", "1", "--json").out)
    assert v["interval"] == "anytime" and v["interval_reason"] == "the registered plan has not finished"


def test_extra_seeds_use_the_anytime_interval_and_failures_are_counted(cli, registered):
    rng = np.random.default_rng(13)
    add_runs(registered, "baseline", rng.normal(0.5, 0.02, 10))
    add_runs(registered, "gated", list(rng.normal(0.5, 0.02, 8)) + [float("nan")])
    add_runs(registered, "gated", [None], status="crashed")
    add_runs(registered, "gated", rng.normal(0.5, 0.02, 2), origin="extra")
    add_runs(registered, "gated", [None], status="queued", origin="extra")
    v = json.loads(cli("verdict", "1", "--json").out)
    assert v["interval"] == "anytime" and v["interval_reason"] == "seeds were added beyond the registered plan"
    assert (v["n_candidate"], v["excluded_candidate"]) == (10, 2)  # one diverged, one crashed
    assert v["pending_runs"] == {"gated": 1}


def test_amended_delta_is_used_and_shown(cli, registered):
    rng = np.random.default_rng(14)
    add_runs(registered, "baseline", rng.normal(0.5, 0.02, 10))
    add_runs(registered, "gated", rng.normal(0.5, 0.02, 10))
    cli("amend", "1", "--field", "min_effect", "--value", "0.05", "--reason", "reviewer asked")
    v = json.loads(cli("verdict", "1", "--json").out)
    assert v["delta"] == 0.05 and v["amended"][0]["field"] == "min_effect"
    assert "note: amended min_effect" in cli("verdict", "1").out


def test_churn_from_saved_predictions(cli, registered, tmp_path):
    rng = np.random.default_rng(15)
    paths = []
    for i in range(20):
        path = tmp_path / f"pred{i}.npy"
        np.save(path, rng.dirichlet(np.ones(3), size=40))
        paths.append(path)
    add_runs(registered, "baseline", rng.normal(0.5, 0.02, 10), predictions=paths[:10])
    add_runs(registered, "gated", rng.normal(0.5, 0.02, 10), predictions=paths[10:])
    churn = json.loads(cli("verdict", "1", "--json").out)["churn"]
    assert churn["within"]["baseline"]["models"] == 10
    assert 0 < churn["within"]["gated"]["churn"] <= 1 and "gated" in churn["between"]


def test_family_counts_every_candidate_ever_added(cli, registered):
    cli("amend", "1", "--field", "arms.wide", "--value", "{cell: gated, hidden: 128, lr: 0.001}", "--reason", "variant")
    rng = np.random.default_rng(16)
    add_runs(registered, "baseline", rng.normal(0.5, 0.02, 10))
    add_runs(registered, "gated", rng.normal(0.5, 0.02, 10))
    v = json.loads(cli("verdict", "1", "--json").out)
    assert v["family_size"] == 2 and len(v["comparisons"]) == 2
    assert all(c["alpha_adjusted"] == pytest.approx(0.025) for c in v["comparisons"])
    wide = next(c for c in v["comparisons"] if c["candidate_name"] == "wide")
    assert wide["verdict"] == "inconclusive" and wide["n_candidate"] == 0
