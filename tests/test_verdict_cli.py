"""The verdict verbs: entries (runs written to a real logbook), files of values, and paper tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as st

from sqlmodel import select

from logbook.db.engine import open_store
from logbook.db.models import Run, utcnow
from logbook.db.queries import arms_of, resolve_entry
from logbook.entries.chain import link_finished_runs
from tests.test_stats import hand_skew_interval


def expected_ci(c, b, level, v):
    """Welch's interval from SciPy, or, where the verdict says skew widened it, the more conservative
    bound of Welch's and the hand-written skew-corrected reference on each side."""
    ref = st.ttest_ind(c, b, equal_var=False).confidence_interval(level)
    if not v["skew_widened"]:
        return ref.low, ref.high
    low, high = hand_skew_interval(b, c, level)
    return min(ref.low, low), max(ref.high, high)

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
    assert (v["ci_low"], v["ci_high"]) == pytest.approx(expected_ci(-c, -b, 0.9, v))
    assert "Judged as the only variant tried (family of 1)." in v["sentence"]
    text = cli("verdict", "--baseline-file", fb, "--candidate-file", fc, "--delta", "0.01", "--lower-is-better")
    assert v["verdict"].upper() in text.out and v["sentence"] in text.out


def test_files_anytime_mode_is_labelled_and_wider(cli, tmp_path):
    rng = np.random.default_rng(8)
    fb = write_values(tmp_path / "b.txt", rng.normal(0, 1, 12))
    fc = write_values(tmp_path / "c.txt", rng.normal(0.5, 1, 12))
    fixed = json.loads(cli("verdict", "--baseline-file", fb, "--candidate-file", fc, "--delta", "0.3", "--json").out)
    peek = json.loads(cli("verdict", "--baseline-file", fb, "--candidate-file", fc, "--delta", "0.3", "--anytime",
                          "--planned-n", "6", "--json").out)
    assert (fixed["interval"], peek["interval"]) == ("welch", "anytime")
    assert peek["ci_high"] - peek["ci_low"] > fixed["ci_high"] - fixed["ci_low"]
    assert "anytime-valid" in peek["sentence"]
    assert fixed["p_value"] is not None and peek["p_value"] is None and "p_value_fixed_n" not in peek
    text = cli("verdict", "--baseline-file", fb, "--candidate-file", fc, "--delta", "0.3", "--anytime", "--planned-n", "6").out
    assert "p (Δ > 0)" not in text and "anytime-valid" in text


def test_files_verdict_requires_delta_and_planned_n(cli, tmp_path):
    """The loophole: without --delta the CLI used 0.95 × the pooled sd of the very values judged."""
    fb = write_values(tmp_path / "b.txt", [1, 2, 3, 4, 5])
    fc = write_values(tmp_path / "c.txt", [2, 3, 4, 5, 6])
    for extra in ([], ["--delta", "auto"]):
        result = cli("verdict", "--baseline-file", fb, "--candidate-file", fc, *extra)
        assert result.code == 2 and result.err.count("\n") == 1
        assert result.err.startswith("--delta: expected δ") and "moves with them" in result.err
    claim = cli("audit-claim", "--baseline", "0.8,0.01,10", "--candidate", "0.85,0.01,10")
    assert claim.code == 2 and claim.err.startswith("--delta: expected δ")
    anytime = cli("verdict", "--baseline-file", fb, "--candidate-file", fc, "--delta", "1", "--anytime")
    assert anytime.code == 2 and anytime.err.startswith("--anytime: expected --planned-n")


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("1.0\nabc\n", [], "b.txt: line 2: expected one number per line (nan allowed), got 'abc'"),
        ("# only one\n1.0\n", [], "b.txt: --baseline-file: expected at least 2 values, got 1"),
        ("1.0\n2.0\n", ["--alpha", "0.6"], "--alpha: expected a number between 0 and 0.5 (exclusive), got 0.6"),
        ("1.0\n2.0\n", ["--delta", "-1"], "--delta: expected a number ≥ 0 in metric units, got '-1'"),
    ],
)
def test_files_bad_input(cli, tmp_path, content, extra, message):
    fb = tmp_path / "b.txt"
    fb.write_text(content)
    fc = write_values(tmp_path / "c.txt", [1, 2, 3, 4, 5])
    result = cli("verdict", "--baseline-file", fb, "--candidate-file", fc, *(extra or ["--delta", "0.1"]))
    assert result.code == 2 and result.err.count("\n") == 1
    assert result.err.strip().endswith(message)


def test_audit_claim(cli):
    result = cli("audit-claim", "--baseline", "0.120,0.010,2", "--candidate", "0.112,0.009,2", "--lower-is-better", "--delta", "0.01", "--json")
    v = json.loads(result.out)
    assert result.code == 0 and v["verdict"] == "inconclusive" and v["detail"].startswith("too few seeds")
    strong = json.loads(cli("audit-claim", "--baseline", "0.80,0.01,10", "--candidate", "0.85,0.01,10", "--delta", "0.02", "--json").out)
    assert strong["verdict"] == "positive" and strong["delta_source"] == "given"
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
    result = cli("audit-claim", "--candidate", "0.85,0.01,10", "--delta", "0.01", *args)
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
                state = status if value is None or np.isfinite(value) else "diverged"
                runs.append(Run(arm_id=arm.id, seed=seeds[k % len(seeds)] + 1_000_003 * (k // len(seeds)), seed_origin=origin,
                                status=state, final_metrics=metrics, wall_time_s=2.0,
                                ended_at=None if state in ("queued", "running") else utcnow(),
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
    assert (v["ci_low"], v["ci_high"]) == pytest.approx(expected_ci(-c, -b, 0.9, v))
    assert v["post_hoc"] is None and v["exploratory"] is False
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


def test_delta_amended_before_results_is_part_of_the_plan(cli, registered):
    cli("amend", "1", "--field", "min_effect", "--value", "0.05", "--reason", "reviewer asked")
    rng = np.random.default_rng(14)
    add_runs(registered, "baseline", rng.normal(0.5, 0.02, 10))
    add_runs(registered, "gated", rng.normal(0.5, 0.02, 10))
    v = json.loads(cli("verdict", "1", "--json").out)
    assert v["delta"] == 0.05 and v["amended"][0]["field"] == "min_effect" and v["post_hoc"] is None
    assert v["amended"][0]["post_hoc"] is False and "note: amended min_effect" in cli("verdict", "1").out


def spread(mean, n, sd, seed=0):
    """n values with exactly this mean and sample sd, and no skew worth the name."""
    z = np.random.default_rng(seed).normal(size=n)
    z = (z - z.mean()) / z.std(ddof=1)
    return list(mean + sd * z)


def test_delta_amended_after_results_gives_only_a_labelled_exploratory_reading(cli, registered, tmp_path):
    """The loophole: δ 0.05 → 0.02 after every run finished turned inconclusive into POSITIVE."""
    assert cli("amend", "1", "--field", "min_effect", "--value", "0.04", "--reason", "before any run").code == 0
    add_runs(registered, "baseline", spread(0.50, 10, 0.02, seed=1))
    add_runs(registered, "gated", spread(0.47, 10, 0.02, seed=2))
    v = json.loads(cli("verdict", "1", "--json").out)
    assert v["verdict"] == "inconclusive" and v["delta"] == 0.04 and v["post_hoc"] is None
    assert cli("amend", "1", "--field", "min_effect", "--value", "0.02", "--reason", "after looking").code == 0
    v = json.loads(cli("verdict", "1", "--json").out)
    assert v["verdict"] == "inconclusive" and v["delta"] == 0.04 and v["registered_delta"] == 0.04
    late = v["post_hoc"]
    assert late["label"] == "with δ amended after results"
    assert [a["new"] for a in late["amendments"]] == [0.02]
    assert late["reading"]["verdict"] == "positive" and late["reading"]["comparisons"][0]["delta"] == 0.02
    text = cli("verdict", "1").out
    assert "exploratory, with δ amended after results (not the entry's verdict)" in text
    assert "post hoc   : with δ amended after results" in cli("show", "1").out
    out = tmp_path / "export"
    assert cli("export", "1", "--format", "md", "--out", out).code == 0
    text = "".join(f.read_text() for f in out.rglob("*.md"))
    assert "Exploratory reading, with δ amended after results (not the entry's verdict)" in text


def test_alpha_amended_after_results_does_not_move_the_verdict(cli, registered):
    """The loophole: α 0.05 → 0.3 after the results turned inconclusive into NEGATIVE."""
    add_runs(registered, "baseline", spread(0.50, 10, 0.02, seed=3))
    add_runs(registered, "gated", spread(0.495, 10, 0.02, seed=4))
    before = json.loads(cli("verdict", "1", "--json").out)
    assert cli("amend", "1", "--field", "alpha", "--value", "0.3", "--reason", "after looking").code == 0
    after = json.loads(cli("verdict", "1", "--json").out)
    assert after["verdict"] == before["verdict"] == "inconclusive" and after["alpha"] == 0.05
    assert after["post_hoc"]["label"] == "with α amended after results"
    assert after["post_hoc"]["reading"]["verdict"] == "negative"
    listed = json.loads(cli("list", "--json").out)["entries"][0]
    assert listed["verdict"] == "inconclusive"


def test_cancel_keeps_the_anytime_interval(cli, registered):
    """The loophole: with seeds unfinished, `cancel` made the plan look complete and the next verdict
    used the fixed-n interval on the peeked seeds (and printed a fixed-n p-value before that)."""
    add_runs(registered, "baseline", spread(0.50, 6, 0.02, seed=5))
    add_runs(registered, "gated", spread(0.475, 6, 0.02, seed=6))
    add_runs(registered, "baseline", [None] * 4, status="queued", origin="planned")
    add_runs(registered, "gated", [None] * 4, status="queued", origin="planned")
    peek = json.loads(cli("verdict", "1", "--json").out)
    assert peek["interval"] == "anytime" and peek["verdict"] == "inconclusive"
    assert peek["p_value"] is None and peek["comparisons"][0]["p_value"] is None
    assert "p (Δ > 0)" not in cli("verdict", "1").out
    assert cli("cancel", "1").code == 0
    after = json.loads(cli("verdict", "1", "--json").out)
    assert after["interval"] == "anytime" and after["verdict"] == "inconclusive"
    assert after["interval_reason"].startswith("planned seeds were cancelled")
    # the same seeds judged as if the plan had finished would be positive: the loophole is real
    fixed = st.ttest_ind(-np.array(spread(0.475, 6, 0.02, seed=6)), -np.array(spread(0.50, 6, 0.02, seed=5)),
                         equal_var=False).confidence_interval(0.9)
    assert fixed.low > 0


def test_a_baseline_that_lost_seeds_cannot_make_the_candidate_negative(cli, registered):
    """The guard both ways: the baseline's worst seeds diverged, flattering it."""
    add_runs(registered, "baseline", spread(0.45, 8, 0.01, seed=7) + [float("nan"), float("nan")])
    add_runs(registered, "gated", spread(0.50, 10, 0.01, seed=8))
    v = json.loads(cli("verdict", "1", "--json").out)
    assert v["verdict"] == "inconclusive" and v["ci_high"] < v["delta"]
    assert "the baseline (baseline) failed or diverged on 2 seeds against 0" in v["detail"]


def test_an_entry_registered_with_auto_delta_is_exploratory(cli, example_file, db_path):
    """Older logbooks hold entries registered with δ = auto: they keep them, labelled exploratory."""
    import sqlite3

    from sqlalchemy import create_engine

    from logbook.entries.chain import seal_existing

    # An entry registered by an older logbook with δ = auto (registration refuses auto now), then
    # sealed into the chain as the upgrade to the hash chain does for every existing entry.
    assert cli("new", example_file, "--register").code == 0
    con = sqlite3.connect(db_path)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")
    con.execute("UPDATE hypothesis SET min_effect = NULL, registered_content = json_set(registered_content, '$.min_effect', NULL)")
    con.execute("DELETE FROM chain_link")
    con.commit()
    con.close()
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:
        assert seal_existing(conn) == 1
    engine.dispose()
    registered = db_path
    add_runs(registered, "baseline", spread(0.50, 10, 0.02, seed=9))
    add_runs(registered, "gated", spread(0.45, 10, 0.02, seed=10))
    v = json.loads(cli("verdict", "1", "--json").out)
    assert v["exploratory"] is True
    assert "registered with δ = auto" in v["exploratory_reason"]
    assert v["comparisons"][0]["exploratory"] is True
    pooled = np.sqrt((np.var(spread(0.50, 10, 0.02, seed=9), ddof=1) + np.var(spread(0.45, 10, 0.02, seed=10), ddof=1)) / 2)
    assert v["delta"] == pytest.approx(np.sqrt(2) * st.norm.ppf(0.75) * pooled)
    text = cli("verdict", "1").out
    assert "overall: positive (exploratory)" in text and "exploratory: registered with δ = auto" in text


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


def test_no_churn_for_regression_predictions(cli, registered, tmp_path):
    """Saved regression outputs (the adding task's sums, beyond [0, 1]) are not class
    probabilities: the verdict reports no churn rather than a meaningless 0."""
    rng = np.random.default_rng(17)
    paths = []
    for i in range(20):
        path = tmp_path / f"reg{i}.npy"
        np.save(path, rng.uniform(0.0, 2.0, size=40))
        paths.append(path)
    add_runs(registered, "baseline", rng.normal(0.5, 0.02, 10), predictions=paths[:10])
    add_runs(registered, "gated", rng.normal(0.5, 0.02, 10), predictions=paths[10:])
    assert json.loads(cli("verdict", "1", "--json").out)["churn"] is None


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
