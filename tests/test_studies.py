"""Variance studies and robustness follow-ups through the real CLI, worker and trainers."""

from __future__ import annotations

import json
import math
import statistics
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from logbook.entries.seeding import derive_streams
from logbook.entries.robustness import Change, parse_vary, robustness_summary
from logbook.entries.variance_study import unvaried_warning
from logbook.errors import InputError
from trainers.command import build_argv

TINY = {"steps": 60, "train_size": 400, "eval_size": 200, "batch_size": 50, "width": 16, "log_every": 1000}


def mean_square(values: list[float]) -> float:
    """One group's mean square about its mean, written out (the one-way ANOVA within-group term
    for a single group): the variance due to the one source that group varies."""
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def test_irreproducibility_study_separates_init_from_data_order(project):
    # ordered: a fixed data order, so only init can vary; fixed_init: every run starts from one
    # initialisation, so only the data order can vary; shuffled: both vary.
    slug = project.entry(
        "spread", "irreproducibility",
        {"ordered": {**TINY, "shuffle_window": 1}, "shuffled": {**TINY, "shuffle_window": 400},
         "fixed_init": {**TINY, "shuffle_window": 400, "init_seed": 0}},
        seeds=5, metric="eval_loss", extra="variance_study: {sources: [init, data], seeds: 8}\n",
    )
    queued = json.loads(project.logbook("run", slug, "--no-worker", "--json").stdout)["queued"]
    assert len(queued) == 3 * (5 + 3 * 8)
    out = project.start_worker("--once", "--cpu-slots", "2", "--batch", "32").communicate(timeout=600)[0]
    runs = project.runs()
    assert all(r["status"] == "succeeded" for r in runs), out
    report = json.loads(project.logbook("variance", slug, "--json").stdout)

    # Independent computation of the components on the same numbers, read from the database.
    def values(arm, group):
        return [r["final_metrics"]["eval_loss"] for r in runs if r["arm"] == arm and r["seed_origin"] == f"variance:{group}"]

    for arm in ("ordered", "shuffled", "fixed_init"):
        total = mean_square(values(arm, "all"))
        assert total > 0
        for group in ("init", "data", "all"):
            got = report["arms"][arm][group]
            assert got["n"] == 8
            assert got["sd"] == pytest.approx(math.sqrt(mean_square(values(arm, group))), rel=1e-9, abs=1e-15)
            assert got["sd"] == pytest.approx(statistics.stdev(values(arm, group)), rel=1e-9, abs=1e-15)
            assert got["share"] == pytest.approx(mean_square(values(arm, group)) / total, rel=1e-9, abs=1e-15)
            assert got["sd_low"] <= got["sd"] <= got["sd_high"]
            assert got["share_low"] <= got["share"] <= got["share_high"]

    # Only init varies (fixed data order): the data-only runs are identical, so data's share is
    # zero, inside its bootstrap interval, while init alone explains a large share.
    # (the study's seeds are fresh at each registration: with 8 runs a variance ratio below 0.1,
    # when one source makes all the spread, has a probability under 1%)
    ordered = report["arms"]["ordered"]
    assert len(set(values("ordered", "data"))) == 1
    assert ordered["data"]["sd"] == 0.0 and ordered["data"]["share"] == 0.0
    assert ordered["data"]["share_low"] <= 0.0 <= ordered["data"]["share_high"]
    assert ordered["init"]["share"] > 0.1 and ordered["init"]["sd_low"] > 0
    # Vice versa, only the data order varies (one initialisation for every run): init's share is
    # zero, inside its interval, and data order alone explains a large share.
    fixed_init = report["arms"]["fixed_init"]
    assert len(set(values("fixed_init", "init"))) == 1
    assert fixed_init["init"]["sd"] == 0.0 and fixed_init["init"]["share"] == 0.0
    assert fixed_init["init"]["share_low"] <= 0.0 <= fixed_init["init"]["share_high"]
    assert fixed_init["data"]["share"] > 0.1 and fixed_init["data"]["sd_low"] > 0
    # Both free: each source alone makes spread.
    shuffled = report["arms"]["shuffled"]
    assert shuffled["data"]["sd_low"] > 0
    assert shuffled["init"]["sd_low"] > 0
    assert report["matter"] == ["init", "data"] and report["pending"] == 0

    # Streams: each group varies its own stream only; the others come from the fixed seed.
    init_runs = [r for r in runs if r["seed_origin"] == "variance:init"]
    data_streams = {json.loads(r["streams"])["data"] for r in init_runs}
    init_streams = {json.loads(r["streams"])["init"] for r in init_runs if r["arm"] == "ordered"}
    assert len(data_streams) == 1 and len(init_streams) == 8
    fixed = {json.loads(r["streams"])["global"] for r in init_runs}
    assert len(fixed) == 1 and fixed.isdisjoint(r["seed"] for r in init_runs)
    for r in init_runs[:3]:
        streams = json.loads(r["streams"])
        assert streams["init"] == derive_streams(r["seed"])["init"]
        assert streams["data"] == derive_streams(streams["global"])["data"]
        record = json.loads(r["determinism"])
        assert record["seed"] == streams.pop("global") and record["streams"] == streams
    # Churn per source (the trainer saves predictions): the mean over pairs of the group's models
    # of the fraction of evaluation examples whose arg-max class differs, written out here.
    def churn(arm, group):
        labels = [np.load(r["predictions_path"]).argmax(axis=1) for r in runs
                  if r["arm"] == arm and r["seed_origin"] == f"variance:{group}"]
        pairs = [(a != b).mean() for i, a in enumerate(labels) for b in labels[i + 1:]]
        return sum(pairs) / len(pairs)

    for arm in ("ordered", "shuffled", "fixed_init"):
        for group in ("init", "data", "all"):
            assert report["arms"][arm][group]["churn"]["churn"] == pytest.approx(churn(arm, group), rel=1e-12, abs=1e-15)
    assert ordered["data"]["churn"]["churn"] == 0.0 and fixed_init["init"]["churn"]["churn"] == 0.0
    assert ordered["init"]["churn"]["churn"] > 0 and fixed_init["data"]["churn"]["churn"] > 0

    # The study's runs never enter the verdict.
    verdict = json.loads(project.logbook("verdict", slug, "--json").stdout)
    assert [len(verdict["arms"][a]["values"]) for a in ("ordered", "shuffled", "fixed_init")] == [5, 5, 5]
    text = project.logbook("variance", slug).stdout
    assert "ordered" in text and "share" in text and "churn" in text


def test_the_study_is_pre_registered_with_its_seeds(project):
    slug = project.entry("reg", "irreproducibility", {"a": TINY, "b": TINY}, seeds=5, metric="eval_loss",
                         extra="variance_study: {sources: [data], seeds: 4}\n")
    detail = json.loads(project.logbook("show", slug, "--json").stdout)
    import sqlite3

    con = sqlite3.connect(project.db)
    content = json.loads(con.execute("SELECT registered_content FROM hypothesis WHERE slug = ?", (slug,)).fetchone()[0])
    con.close()
    study = content["variance_study"]
    assert study["sources"] == ["data"] and study["seeds"] == 4
    assert sorted(study["group_seeds"]) == ["all", "data"] and all(len(s) == 4 for s in study["group_seeds"].values())
    assert not set(study["group_seeds"]["data"]) & set(detail["planned_seeds"])
    assert detail["registration_verified"] is True


def test_a_study_on_a_source_the_trainer_cannot_vary_is_refused(project):
    (project.root / "noise.yaml").write_text(textwrap.dedent("""\
        title: t
        hypothesis: h
        metric: eval_loss
        goal: minimize
        min_effect: 0.1
        seeds: 5
        trainer: irreproducibility
        arms: {a: {}, b: {}}
        variance_study: {sources: [init, noise], seeds: 5}
        """))
    out = project.logbook("new", "noise.yaml", check=False)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "noise.yaml: variance_study.sources: trainer 'irreproducibility' cannot vary noise; "
        "expected sources it declares in VARIES (data, init)"]
    (project.root / "cmd.yaml").write_text(textwrap.dedent("""\
        title: t
        hypothesis: h
        metric: score
        goal: maximize
        min_effect: 0.1
        seeds: 5
        trainer: {command: "python s.py {seed_init}"}
        arms: {a: {}, b: {}}
        variance_study: {sources: [init, data], seeds: 5}
        """))
    out = project.logbook("new", "cmd.yaml", check=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "variance_study.sources" in out.stderr and "cannot vary data" in out.stderr
    assert not project.db.exists()  # refused files write nothing: not even a new logbook


def test_command_trainer_gets_the_stream_seeds():
    streams = {"init": 11, "data": 22, "noise": 33, "split": 44}
    argv = build_argv("train.py --init {seed_init} --data={seed_data} {seed}", 7, Path("/r"), {}, streams)
    assert argv == ["train.py", "--init", "11", "--data=22", "7"]
    assert build_argv("t {seed_noise}", 7, Path("/r"), {}) == ["t", "{seed_noise}"]  # a preview shows it as written


SCORE = textwrap.dedent("""\
    import random, sys
    cand, lr, seed = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    noise = random.Random(seed).gauss(0.0, 0.1)
    effect = 0.5 if lr >= 2 else -0.5  # the candidate helps only at twice the learning rate
    print(f"score: {noise + cand * effect}")
    """)


async def test_robustness_follow_up_shows_a_sign_flip(project):
    (project.root / "score.py").write_text(SCORE)
    trainer = {"command": "python score.py {cand} {lr} {seed}", "metrics": {"score": r"score: (\S+)"}}
    slug = project.entry("flip", trainer, {"baseline": {"cand": 0, "lr": 1.0}, "cand": {"cand": 1, "lr": 1.0}}, seeds=5)
    project.logbook("run", slug, "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    assert json.loads(project.logbook("verdict", slug, "--json").stdout)["verdict"] == "negative"

    bad = project.logbook("robustness", slug, "--vary", "lr", "--yes", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("--vary: expected NAME=V1,V2")
    missing = project.logbook("robustness", slug, check=False)
    assert missing.returncode == 2 and "no robustness follow-up" in missing.stderr

    made = project.logbook("robustness", slug, "--vary", "lr=x0.5,x2", "--no-worker", "--yes")
    follow_id = int(made.stdout.strip())
    waiting = json.loads(project.logbook("robustness", slug, "--json").stdout)
    assert waiting["follow_up"] == follow_id and waiting["robust"] is None
    assert all(s["verdict"] is None for s in waiting["settings"])
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)

    report = json.loads(project.logbook("robustness", slug, "--json").stdout)
    assert report["robust"] is False
    by_label = {s["label"]: s for s in report["settings"]}
    assert by_label["lr×0.5"]["verdict"] == "negative" and by_label["lr×0.5"]["setting"] == {"lr": "x0.5"}
    assert by_label["lr×2"]["verdict"] == "positive" and by_label["lr×2"]["ci_low"] > 0
    assert by_label["lr×0.5"]["ci_high"] < 0
    assert report["summary"] == "positive at lr×2 only: not robust"
    assert "not robust" in project.logbook("robustness", slug).stdout

    # The follow-up is its own registered entry: fresh seeds, δ and α inherited, a family of two;
    # the original is unchanged.
    follow = json.loads(project.logbook("show", str(follow_id), "--json").stdout)
    original = json.loads(project.logbook("show", slug, "--json").stdout)
    assert follow["min_effect"] == original["min_effect"] and follow["alpha"] == original["alpha"]
    assert not set(follow["planned_seeds"]) & set(original["planned_seeds"])
    assert {a["name"] for a in follow["arms"]} == {"baseline.lr-x0.5", "cand.lr-x0.5", "baseline.lr-x2", "cand.lr-x2"}
    assert {a["name"]: a["config"]["lr"] for a in follow["arms"]}["cand.lr-x2"] == 2.0
    assert original["amendments"] == [] and follow["registration_verified"] is True

    # The follow-up judges each setting against its own baseline, one family over the settings.
    judged = json.loads(project.logbook("verdict", str(follow_id), "--json").stdout)
    assert [(c["baseline_name"], c["candidate_name"], c["family_size"]) for c in judged["comparisons"]] == [
        ("baseline.lr-x0.5", "cand.lr-x0.5", 2), ("baseline.lr-x2", "cand.lr-x2", 2)]
    # The original's verdict and writeup carry the summary line and the table.
    assert "robustness: positive at lr×2 only: not robust" in project.logbook("verdict", slug).stdout
    assert "robustness : positive at lr×2 only: not robust" in project.logbook("show", slug).stdout
    assert json.loads(project.logbook("show", slug, "--json").stdout)["studies"] == {
        "variance_warning": None, "robustness": "positive at lr×2 only: not robust", "robust": False}
    project.logbook("export", slug, "--format", "md", "--out", "out")
    text = (project.root / "out" / f"{slug}.md").read_text()
    assert "## Robustness at neighbouring settings" in text and "| lr×2 | cand | positive |" in text
    assert "**positive at lr×2 only: not robust**" in text
    project.logbook("export", slug, "--format", "tex", "--out", "out")
    tex = (project.root / "out" / f"{slug}.tex").read_text()
    assert "Robustness at neighbouring settings" in tex and "lr$\\times$2 & cand & positive" in tex
    # ... and the original's entry screen.
    from logbook.tui.app import LogbookApp
    from logbook.tui.screens.entry import EntryScreen

    original_id = json.loads(project.logbook("show", slug, "--json").stdout)["id"]
    app = LogbookApp(project.db, refresh_s=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(EntryScreen(original_id))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not app.screen.query("StudyPanel.visible"):
            await pilot.pause(0.1)
        panel = str(app.screen.query_one("#studies").render())
    assert f"robustness (follow-up {follow_id}): positive at lr×2 only: not robust" in panel
    assert "lr×0.5" in panel and "negative" in panel.lower()


def test_parse_vary_and_the_summary_line():
    changes = parse_vary(["lr=x0.5,x2", "hidden=48,96", "act=gelu"])
    assert [c.label for c in changes] == ["lr×0.5", "lr×2", "hidden=48", "hidden=96", "act=gelu"]
    assert changes[2].value == 48 and changes[4].value == "gelu"
    assert Change("hidden", factor=2.0).apply({"hidden": 48}, "a") == {"hidden": 96}
    with pytest.raises(InputError, match="--vary: lr: expected a number in the config of every arm"):
        Change("lr", factor=2.0).apply({}, "baseline")
    with pytest.raises(InputError, match="positive finite factor"):
        parse_vary(["lr=x0"])
    rows = [{"label": f"s{i}", "verdict": "negative"} for i in range(5)]
    assert robustness_summary("negative", rows) == (True, "negative at 5/5 neighbouring settings")
    rows[2] = {"label": "lr×2", "verdict": "positive"}
    assert robustness_summary("negative", rows) == (False, "positive at lr×2 only: not robust")
    rows[0] = {"label": "x", "verdict": None}
    assert robustness_summary("negative", rows)[0] is None


def test_the_warning_names_sources_that_matter_but_were_not_varied():
    assert unvaried_warning(["init", "data"], ["data"], {"data": 0.6}) is None
    assert unvaried_warning(["init"], ["data"], {"data": 0.6}) == (
        "your seeds varied init only; data contributes 60% of the variance: the verdict's interval is too narrow")


def test_held_streams_reach_planned_extra_and_retried_runs(project):
    """With ``verdict_varies: [init]`` the verdict's runs (planned and extra seeds) take every
    other stream from the study's fixed seed; study runs keep their own plan; a retried attempt
    keeps the streams of the attempt it retries."""
    (project.root / "held.py").write_text(textwrap.dedent("""\
        import pathlib, sys
        if pathlib.Path("fail").exists():
            sys.exit("failing on purpose")
        print(f"score: {int(sys.argv[1]) % 97 + int(sys.argv[2]) % 89}")
        """))
    (project.root / "fail").write_text("")
    trainer = {"command": "python held.py {seed_init} {seed_data}", "metrics": {"score": r"score: (\S+)"}}
    slug = project.entry("held", trainer, {"baseline": {}, "cand": {}}, seeds=5,
                         extra="variance_study: {sources: [init, data], seeds: 2, verdict_varies: [init]}\n")
    project.logbook("run", slug, "--no-worker")
    project.logbook("run", slug, "--seeds", "2", "--no-worker")
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    runs = project.runs()
    assert len(runs) == 2 * (5 + 2 + 3 * 2) and {r["status"] for r in runs} == {"failed"}

    import sqlite3

    con = sqlite3.connect(project.db)
    study = json.loads(con.execute("SELECT registered_content FROM hypothesis").fetchone()[0])["variance_study"]
    con.close()
    fixed = derive_streams(study["fixed_seed"])
    for r in runs:
        streams, own = json.loads(r["streams"]), derive_streams(r["seed"])
        if r["seed_origin"] in ("planned", "extra"):  # init from the run's seed, the rest held
            assert streams == {"init": own["init"], "data": fixed["data"], "noise": fixed["noise"], "split": fixed["split"],
                               "global": r["seed"]}
        elif r["seed_origin"] == "variance:data":
            assert streams == {**fixed, "data": own["data"], "global": study["fixed_seed"]}

    (project.root / "fail").unlink()
    project.logbook("requeue", slug, "--no-worker")
    retried = {r["retry_of"]: r for r in project.runs() if r["retry_of"] is not None}
    assert len(retried) == len(runs)
    assert all(retried[r["id"]]["streams"] == r["streams"] for r in runs)
    project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)
    again = {r["retry_of"]: r for r in project.runs() if r["retry_of"] is not None}
    for r in runs:
        streams = json.loads(r["streams"])
        assert again[r["id"]]["status"] == "succeeded"
        # what the script was given: the attempt's own streams
        assert again[r["id"]]["final_metrics"]["score"] == streams["init"] % 97 + streams["data"] % 89
