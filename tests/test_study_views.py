"""The studies where people read them: the entry screen's panel (Pilot), the verdict's warning,
and the Markdown/LaTeX writeups (a table and a figure)."""

from __future__ import annotations

import json
import sqlite3
import statistics
import textwrap
import time

import numpy as np

STUDY_YAML = textwrap.dedent("""\
    title: Spread of a script
    hypothesis: The candidate scores higher
    metric: score
    goal: maximize
    min_effect: 0.1
    seeds: 5
    trainer: {command: "python train.py {seed_init} {seed_data}", metrics: {score: "score: (\\\\S+)"}}
    arms: {baseline: {}, wide: {}}
    variance_study: {sources: [init, data], seeds: 6}
    """)


def study_entry(cli, tmp_path, db_path) -> None:
    """A registered entry whose study runs ended: data order makes most of the spread."""
    path = tmp_path / "study.yaml"
    path.write_text(STUDY_YAML)
    assert cli("new", path).code == 0
    con = sqlite3.connect(db_path)
    assert cli("register", "1").code == 0
    study = json.loads(con.execute("SELECT registered_content FROM hypothesis").fetchone()[0])["variance_study"]
    rng = np.random.default_rng(0)
    spread = {"init": 0.01, "data": 0.2, "all": 0.2}
    planned = json.loads(con.execute("SELECT planned_seeds FROM hypothesis").fetchone()[0])
    for arm_id, in con.execute("SELECT id FROM arm").fetchall():
        for seed in planned:
            con.execute("INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, ended_at, final_metrics,"
                        " cancel_requested) VALUES (?, ?, 'planned', 'succeeded', 1, '2026-05-04', '2026-05-04', ?, 0)",
                        (arm_id, seed, json.dumps({"score": float(0.5 + rng.normal(0, 0.2))})))
        for group, seeds in study["group_seeds"].items():
            for seed in seeds:
                value = float(0.5 + rng.normal(0, spread[group]))
                con.execute("INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, ended_at, final_metrics,"
                            " cancel_requested) VALUES (?, ?, ?, 'succeeded', 1, '2026-05-04', '2026-05-04', ?, 0)",
                            (arm_id, seed, f"variance:{group}", json.dumps({"score": value})))
    con.commit()
    con.close()


def test_study_registration_records_what_the_verdicts_seeds_vary(cli, tmp_path, db_path):
    study_entry(cli, tmp_path, db_path)
    shown = json.loads(cli("show", "1", "--json").out)
    assert shown["variance_study"]["verdict_varies"] == ["data", "init"]
    report = json.loads(cli("variance", "1", "--json").out)
    assert report["matter"] == ["data"] and report["warning"] is None
    assert set(report["arms"]["baseline"]) == {"init", "data", "all"}
    assert report["arms"]["wide"]["data"]["share"] > 0.3 > report["arms"]["wide"]["init"]["share"]
    bad = cli("variance", "2")
    assert bad.code == 2 and "ENTRY" in bad.err


SPREAD = textwrap.dedent("""\
    import random, sys
    init, data = int(sys.argv[1]), int(sys.argv[2])
    # the data order makes most of the spread; the initialisation very little
    print(f"score: {0.5 + random.Random(init).gauss(0, 0.01) + random.Random(data).gauss(0, 0.2)}")
    """)


async def test_the_verdict_warns_when_its_seeds_varied_less_than_matters(project):
    """Registered arms whose seeds vary init only (the data seed held, as a script with a
    hard-coded data seed would); the study finds data order dominates: verdict, show, the entry
    screen and both writeups say the verdict's interval is too narrow."""
    from logbook.entries.seeding import derive_streams
    from logbook.tui.app import LogbookApp
    from logbook.tui.screens.entry import EntryScreen

    (project.root / "spread.py").write_text(SPREAD)
    trainer = {"command": "python spread.py {seed_init} {seed_data}", "metrics": {"score": r"score: (\S+)"}}
    slug = project.entry("narrow", trainer, {"baseline": {}, "wide": {}}, seeds=5,
                         extra="variance_study: {sources: [init, data], seeds: 8, verdict_varies: [init]}\n")
    project.logbook("run", slug, "--no-worker")
    out = project.start_worker("--once", "--cpu-slots", "2").communicate(timeout=300)[0]
    runs = project.runs()
    assert len(runs) == 2 * (5 + 3 * 8) and all(r["status"] == "succeeded" for r in runs), out

    # The planned runs really held the data stream: one value, the study's fixed seed's.
    con = sqlite3.connect(project.db)
    study = json.loads(con.execute("SELECT registered_content FROM hypothesis").fetchone()[0])["variance_study"]
    con.close()
    assert study["verdict_varies"] == ["init"] and study["verdict_holds"] == ["data", "noise", "split"]
    planned = [r for r in runs if r["seed_origin"] == "planned"]
    streams = [json.loads(r["streams"]) for r in planned]
    assert {s["data"] for s in streams} == {derive_streams(study["fixed_seed"])["data"]}
    assert all(s["init"] == derive_streams(r["seed"])["init"] and s["global"] == r["seed"] for s, r in zip(streams, planned))

    # The share the warning names, computed independently from the runs' values.
    def var(arm, group):
        return statistics.variance([r["final_metrics"]["score"] for r in runs
                                    if r["arm"] == arm and r["seed_origin"] == f"variance:{group}"])

    share = max(var(arm, "data") / var(arm, "all") for arm in ("baseline", "wide"))
    warning = (f"your seeds varied init only; data contributes {share:.0%} of the variance: "
               "the verdict's interval is too narrow")
    report = json.loads(project.logbook("variance", slug, "--json").stdout)
    assert report["matter"] == ["data"] and report["warning"] == warning

    assert f"warning: {warning}" in project.logbook("verdict", slug).stdout
    assert json.loads(project.logbook("verdict", slug, "--json").stdout)["studies"]["variance_warning"] == warning
    shown = project.logbook("show", slug).stdout
    assert "seeds vary : init only; data, noise, split held at one fixed value" in shown
    assert f"warning    : {warning}" in shown
    assert json.loads(project.logbook("show", slug, "--json").stdout)["studies"]["variance_warning"] == warning
    project.logbook("export", slug, "--format", "md", "--out", "out")
    assert f"**Warning:** {warning}." in (project.root / "out" / f"{slug}.md").read_text()
    project.logbook("export", slug, "--format", "tex", "--out", "out")
    assert "\\textbf{Warning:} your seeds varied init only; data contributes" in (project.root / "out" / f"{slug}.tex").read_text()

    app = LogbookApp(project.db, refresh_s=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(EntryScreen(1))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not app.screen.query("StudyPanel.visible"):
            await pilot.pause(0.1)
        panel = str(app.screen.query_one("#studies").render())
    assert f"warning: {warning}" in panel


def test_verdict_varies_must_be_sources_the_trainer_varies(project):
    (project.root / "bad.yaml").write_text(textwrap.dedent("""\
        title: t
        hypothesis: h
        metric: eval_loss
        goal: minimize
        min_effect: 0.1
        seeds: 5
        trainer: irreproducibility
        arms: {a: {}, b: {}}
        variance_study: {sources: [init, data], seeds: 5, verdict_varies: [noise]}
        """))
    out = project.logbook("new", "bad.yaml", check=False)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "bad.yaml: variance_study.verdict_varies: trainer 'irreproducibility' cannot vary noise; "
        "expected sources it declares in VARIES (data, init)"]
    assert not project.db.exists()


def test_writeups_have_the_variance_table_and_figure(cli, tmp_path, db_path):
    study_entry(cli, tmp_path, db_path)
    out = tmp_path / "out"
    assert cli("export", "1", "--format", "md", "--out", out).code == 0
    text = (out / "spread-of-a-script.md").read_text()
    assert "## Where the spread comes from" in text
    assert "| baseline | data | 6 |" in text and "share of all-sources variance" in text
    assert "![spread due to each source](figures/spread-of-a-script-variance.png)" in text
    assert (out / "figures" / "spread-of-a-script-variance.png").stat().st_size > 1000
    assert cli("export", "1", "--format", "tex", "--out", out).code == 0
    tex = (out / "spread-of-a-script.tex").read_text()
    assert "\\subsection*{Where the spread comes from}" in tex and "baseline & data & 6 &" in tex
    # JSON and CSV exports carry the study beside the per-seed rows, as `logbook variance --json` reports it
    variance = json.loads(cli("variance", "1", "--json").out)
    for fmt in ("json", "csv"):
        assert cli("export", "1", "--format", fmt, "--out", out / fmt).code == 0
        studies = json.loads((out / fmt / "spread-of-a-script.studies.json").read_text())
        assert [(s["entry"], s["id"], s["robustness"]) for s in studies] == [("spread-of-a-script", 1, None)]
        assert studies[0]["variance"] == variance


async def test_entry_screen_shows_the_bars_and_registers_a_follow_up(cli, tmp_path, db_path):
    from logbook.tui.app import LogbookApp
    from logbook.tui.screens.entry import EntryScreen

    study_entry(cli, tmp_path, db_path)
    app = LogbookApp(db_path, refresh_s=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(EntryScreen(1))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not app.screen.query("StudyPanel.visible"):
            await pilot.pause(0.1)
        panel = str(app.screen.query_one("#studies").render())
        assert "where the spread comes from" in panel and "█" in panel and "data" in panel
        await pilot.press("n")
        await pilot.pause(0.3)
        await pilot.press(*"seeds=5,7", "enter", "enter")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and cli("list", "--json").out.count('"slug"') < 2:
            await pilot.pause(0.2)
    follow = json.loads(cli("show", "2", "--json").out)
    assert follow["follows"]["id"] == 1 and "robustness" in follow["tags"]
    assert {a["name"] for a in follow["arms"]} == {"baseline.seeds-5", "wide.seeds-5", "baseline.seeds-7", "wide.seeds-7"}


def _group(sd, low, high, share, churn=None):
    return {"n": 8, "sd": sd, "sd_low": low, "sd_high": high, "share": share,
            "churn": None if churn is None else {"churn": churn}}


PANEL_STUDIES = {
    "variance": {
        "metric": "eval_loss", "seeds": 8, "pending": 0, "matter": ["data"], "sources": ["init", "data"],
        "warning": "your seeds varied init only; data contributes 91% of the variance: the verdict's interval is too narrow",
        "arms": {"relu": {"init": _group(0.004, 0.002, 0.006, 0.05, 0.021), "data": _group(0.019, 0.011, 0.026, 0.91, 0.084),
                          "all": _group(0.02, 0.012, 0.027, 1.0, 0.09)},
                 "smelu": {"init": _group(0.003, 0.001, 0.005, 0.03), "data": _group(0.012, 0.007, 0.017, 0.64),
                           "all": _group(0.015, 0.009, 0.02, 1.0)}},
    },
    "robustness": {
        "follow_up": 2, "robust": False, "summary": "positive at lr×2 only: not robust",
        "settings": [{"label": "lr×0.5", "candidate": "smelu", "verdict": "negative", "effect": -0.01, "ci_low": -0.02, "ci_high": -0.004},
                     {"label": "lr×2", "candidate": "smelu", "verdict": "positive", "effect": 0.03, "ci_low": 0.012, "ci_high": 0.05}],
    },
}


def panel_app():
    from pathlib import Path

    from textual.app import App

    import logbook.tui
    from logbook.tui.study_widgets import StudyPanel

    class PanelApp(App):
        CSS_PATH = str(Path(logbook.tui.__file__).with_name("logbook.tcss"))

        def compose(self):
            yield StudyPanel(id="studies", classes="card")

        def on_mount(self) -> None:
            self.query_one(StudyPanel).show(PANEL_STUDIES)

    return PanelApp()


async def test_study_panel_draws_bars_churn_warning_and_robustness():
    app = panel_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        panel = app.query_one("#studies")
        assert panel.has_class("visible")
        text = str(panel.render())
    lines = text.splitlines()
    data = next(line for line in lines if line.strip().startswith("data") and "91%" in line)
    init = next(line for line in lines if line.strip().startswith("init") and "5%" in line)
    assert data.count("█") > init.count("█") > 0  # one scale: data's sd is about five times init's
    assert "churn 8%" in data and "churn 2%" in init
    assert not any("churn" in line for line in lines if "64%" in line)  # no predictions saved: no churn
    assert "warning: your seeds varied init only; data contributes 91%" in text
    assert "robustness (follow-up 2): positive at lr×2 only: not robust" in text


def test_snapshot_study_panel(snap_compare):
    assert snap_compare(panel_app(), terminal_size=(80, 24))
