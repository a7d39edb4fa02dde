"""Writeups that drop into a paper: a real article \\input's one entry and the logbook's appendix
from other folders and compiles with pdflatex, with no overfull box and no undefined reference;
entries without results are listed apart, each entry is grouped once; the figures are compared
with reference images."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import add_runs

PAPER = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{booktabs}
\usepackage{graphicx}
\usepackage{tabularx}
\begin{document}
\section{Results}
The gate helps (Section~\ref{lb:SLUG}, Table~\ref{lb:SLUG:arms}, Table~\ref{lb:SLUG:comparisons},
Figure~\ref{lb:SLUG:fig:effects}); the rest are in Appendix~\ref{lb:appendix}.
\input{results/SLUG}
\clearpage
\appendix
\input{supplement/appendix}
\end{document}
"""


def entry_file(tmp_path: Path, title: str, arms: tuple[str, str], tags: str, delta: float = 0.01) -> Path:
    path = tmp_path / "entry.yaml"
    path.write_text(textwrap.dedent(f"""\
        title: {json.dumps(title)}
        hypothesis: An extra output gate lowers validation loss on the adding task
        metric: val_loss
        goal: minimize
        min_effect: {delta}
        seeds: 6
        trainer: seq-gating
        arms:
          {arms[0]}: {{cell: lstm}}
          {arms[1]}: {{cell: gated}}
        baseline: {arms[0]}
        tags: {tags}
        """))
    return path


@pytest.fixture
def three_entries(cli, tmp_path, db_path, fixed_registration):
    """A positive entry, a negative one with two tags, and one registered but never run."""
    assert cli("new", entry_file(tmp_path, "Output gate with a long enough title to wrap in the table",
                                  ("lstm_baseline_with_a_long_arm_name", "gated_candidate_with_a_long_arm_name"),
                                  "[rnn]"), "--register").code == 0
    add_runs(db_path, "lstm_baseline_with_a_long_arm_name", [0.5123, 0.4981, 0.5057, 0.5204, 0.4912, 0.5093])
    add_runs(db_path, "gated_candidate_with_a_long_arm_name", [0.4012, 0.3981, 0.4057, 0.4104, 0.3912, 0.4093])
    assert cli("new", entry_file(tmp_path, "Peephole connections", ("lstm", "peephole"), "[rnn, gates]"), "--register").code == 0
    add_runs(db_path, "lstm", [0.5123, 0.4981, 0.5057, 0.5204, 0.4912, 0.5093])
    add_runs(db_path, "peephole", [0.5101, 0.5002, 0.5049, 0.5199, 0.4931, 0.5071])
    assert cli("new", entry_file(tmp_path, "Coupled forget gate", ("plain", "coupled"), "[gates]"), "--register").code == 0
    return db_path


def slug_of(cli, ref: str) -> str:
    return json.loads(cli("show", ref, "--json").out)["slug"]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex: `make test` installs it as root (texlive)")
def test_a_paper_inputs_an_entry_and_the_appendix_from_other_folders(cli, three_entries, tmp_path):
    paper = tmp_path / "paper"
    slug = slug_of(cli, "1")
    assert cli("export", "1", "--format", "tex", "--out", paper / "results").code == 0
    assert cli("export", "--all", "--verdict", "negative,inconclusive", "--format", "tex", "--out", paper / "supplement").code == 0
    assert (paper / "supplement" / "logbook.tex").read_text().count("\\input{appendix}") == 1
    (paper / "main.tex").write_text(PAPER.replace("SLUG", slug))
    log = ""
    for _ in range(2):  # the second pass resolves the references
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"], cwd=paper,
                             capture_output=True, text=True, timeout=180)
        log = (paper / "main.log").read_text(errors="replace")
        assert run.returncode == 0, run.stdout[-3000:]
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)
    assert "undefined" not in log.lower(), re.findall(r".*undefined.*", log, flags=re.I)
    assert "multiply defined" not in log.lower()
    pages = int(re.search(r"Output written on main\.pdf \((\d+) pages?", log).group(1))
    assert pages >= 2
    # the standalone wrapper compiles too, from its own folder
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "logbook.tex"], cwd=paper / "supplement",
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-3000:]


def test_the_appendix_lists_unrun_entries_apart_and_each_entry_once(cli, three_entries, tmp_path):
    out = tmp_path / "all"
    assert cli("export", "--all", "--out", out).code == 0
    text = (out / "logbook.md").read_text()
    results = text.split("## Negative and inconclusive results")[1].split("## Registered, not yet run")[0]
    assert results.count("Peephole connections") == 1  # two tags, grouped once under the first
    assert "### rnn" in results and "(also: gates)" in results
    assert "Coupled forget gate" not in results and "0 baseline and 0 candidate values" not in text
    unrun = text.split("## Registered, not yet run")[1].split("## Entries")[0]
    assert "Coupled forget gate" in unrun and "6 seeds per arm planned on 2 arms" in unrun
    entries = text.split("## Entries")[1]
    assert "Coupled forget gate" not in entries  # no empty section, no empty figure
    assert not list((out / "figures").glob(f"{slug_of(cli, '3')}-*"))
    tex_out = tmp_path / "tex"
    assert cli("export", "--all", "--format", "tex", "--out", tex_out).code == 0
    body = (tex_out / "appendix.tex").read_text()
    assert "\\documentclass" not in body and "Registered, not yet run" in body
    assert body.split("Negative and inconclusive results")[1].split("Registered, not yet run")[0].count("Peephole connections") == 1


def test_latex_and_markdown_carry_the_same_comparisons_and_reproduction(cli, three_entries, tmp_path):
    slug = slug_of(cli, "2")
    for fmt in ("md", "tex"):
        assert cli("export", "2", "--format", fmt, "--out", tmp_path / fmt).code == 0
    md_text = (tmp_path / "md" / f"{slug}.md").read_text()
    tex_text = (tmp_path / "tex" / f"{slug}.tex").read_text().replace("\\allowbreak{}", "")
    verdict = json.loads(cli("verdict", "2", "--json").out)
    for number in (verdict["effect"], verdict["ci_low"], verdict["ci_high"], verdict["prob_improvement"]):
        shown = f"{number:.3g}".replace("-", "−")
        assert shown in md_text
        assert shown.replace("−", "$-$") in tex_text
    assert f"\\label{{lb:{slug}:comparisons}}" in tex_text and f"\\label{{lb:{slug}:arms}}" in tex_text
    for command in (f"logbook audit {slug}", "logbook rerun "):
        assert command in md_text and command in tex_text


BASELINES = Path(__file__).parent / "baseline_images"


def synthetic_report() -> dict:
    """A fixed report: a baseline, a candidate that helps and one that does not, a loss curve
    spanning three decades (drawn on a log axis) and an accuracy curve."""
    import numpy as np

    rng = np.random.default_rng(7)
    base, good, flat = (0.50 + 0.01 * rng.standard_normal(8), 0.46 + 0.01 * rng.standard_normal(8),
                        0.50 + 0.01 * rng.standard_normal(8))
    steps = list(range(0, 200, 10))

    def curve(scale, offset):
        per_seed = np.array([[scale * 10 ** (-3 * s / 200) * (1 + 0.1 * k) + offset for s in steps] for k in range(5)])
        return {"steps": steps, "mean": per_seed.mean(0).tolist(), "sd": per_seed.std(0, ddof=1).tolist(),
                "low": per_seed.min(0).tolist(), "high": per_seed.max(0).tolist(), "seeds": [5] * len(steps)}

    def comparison(name, verdict, effect, low, high):
        return {"candidate_name": name, "baseline_name": "lstm", "verdict": verdict, "effect": effect, "ci_low": low,
                "ci_high": high, "delta": 0.01, "level": 0.9, "interval": "welch"}

    return {
        "entry": {"metric": "val_loss", "goal": "minimize", "baseline": "lstm", "min_effect": 0.01,
                  "arms": [{"name": "lstm"}, {"name": "gated"}, {"name": "peephole"}]},
        "verdict": {"verdict": "positive",
                    "arms": {"lstm": {"values": base.tolist(), "excluded": 0},
                             "gated": {"values": good.tolist(), "excluded": 1},
                             "peephole": {"values": [*flat.tolist(), float("nan")], "excluded": 0}},
                    "comparisons": [comparison("gated", "positive", 0.04, 0.031, 0.049),
                                    comparison("peephole", "negative", -0.002, -0.011, 0.007)]},
        "curves": {"loss": {"lstm": curve(2.0, 0.0), "gated": curve(1.5, 0.0)},
                   "acc": {"lstm": curve(-0.3, 0.9), "gated": curve(-0.25, 0.92)}},
    }


@pytest.mark.parametrize("kind", ["distribution", "effects", "curves"])
def test_figures_match_their_reference_images(kind, tmp_path):
    from matplotlib.testing.compare import compare_images

    from logbook.export import figures

    paths = getattr(figures, kind)(synthetic_report(), tmp_path / kind)
    png = next(p for p in paths if p.suffix == ".png")
    expected = BASELINES / f"{kind}.png"
    if not expected.exists():  # first run writes the reference for review (committed with the code)
        BASELINES.mkdir(exist_ok=True)
        shutil.copy(png, expected)
    assert compare_images(str(expected), str(png), tol=6) is None


def test_the_curve_axis_goes_logarithmic_only_across_decades():
    import numpy as np

    from logbook.export.figures import log_scale

    assert log_scale([np.array([2.0, 0.01])]) and not log_scale([np.array([2.0, 0.5])])
    assert not log_scale([np.array([2.0, -0.01])]) and not log_scale([np.array([np.nan])])
