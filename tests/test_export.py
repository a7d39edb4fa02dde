"""Writeups: a golden Markdown file, hostile titles in LaTeX and Markdown, tables into pandas, figures."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt
from pylatexenc.latex2text import LatexNodes2Text
from pylatexenc.latexwalker import LatexMacroNode, LatexWalker

from logbook.export.latex import standalone
from tests.conftest import add_runs, make_entry

GOLDEN = Path(__file__).parent / "golden" / "entry.md"
HOSTILE = r"Gates _ % & # $ { } ~ ^ \ and 50% more"
INJECTION = "[click](javascript:alert(1)) <script>alert(1)</script> **bold** | cell # not a heading"
@pytest.fixture
def fixed_entry(cli, tmp_path, db_path, fixed_registration):
    make_entry(cli, tmp_path)
    add_runs(db_path, "baseline", [0.512, 0.498, 0.505, 0.520, 0.491, 0.509])
    add_runs(db_path, "gated", [0.507, 0.502, 0.499, 0.515, None, 0.511], ["succeeded"] * 4 + ["crashed", "succeeded"])
    cli("amend", "1", "--field", "notes", "--value", "pilot done", "--reason", "record the pilot")
    return db_path


def normalise(text: str) -> str:
    text = re.sub(r"(Chain head \| `)[0-9a-f]{64}", r"\1<CHAIN HEAD>", text)  # covers draft creation times
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<DATE>", text)


def test_golden_markdown(cli, fixed_entry, tmp_path):
    out = tmp_path / "export"
    result = cli("export", "1", "--out", out)
    assert result.code == 0, result.err
    text = normalise((out / "extra-output-gate-in-the-recurrent-cell.md").read_text())
    if not GOLDEN.exists():  # first run writes the golden file for review
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_figures_are_written_and_referenced_relatively(cli, fixed_entry, tmp_path):
    out = tmp_path / "export"
    cli("export", "1", "--out", out)
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    text = (moved / "extra-output-gate-in-the-recurrent-cell.md").read_text()
    references = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert references == ["figures/extra-output-gate-in-the-recurrent-cell-distribution.png",
                          "figures/extra-output-gate-in-the-recurrent-cell-effects.png",
                          "figures/extra-output-gate-in-the-recurrent-cell-curves.png"]
    for ref in references:
        png = moved / ref
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        svg = png.with_suffix(".svg")
        assert ET.parse(svg).getroot().tag.endswith("svg") and svg.stat().st_size > 5000
        assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def _section_title(source: str) -> str:
    nodes, _, _ = LatexWalker(source).get_latex_nodes()
    for node in nodes:
        if isinstance(node, LatexMacroNode) and node.macroname == "section":
            return LatexNodes2Text().nodelist_to_text(node.nodeargd.argnlist[-1].nodelist)
    raise AssertionError("no \\section")


def test_latex_escapes_hostile_titles_and_compiles(cli, tmp_path, db_path, fixed_registration):
    make_entry(cli, tmp_path, title=HOSTILE, tags="['a_b & c']")
    add_runs(db_path, "baseline", [0.5, 0.51, 0.49, 0.52, 0.48, 0.5])
    add_runs(db_path, "gated", [0.4, 0.41, 0.39, 0.42, 0.38, 0.4])
    out = tmp_path / "tex"
    assert cli("export", "1", "--format", "tex", "--out", out).code == 0
    (section,) = list(out.glob("*.tex"))
    source = section.read_text()
    # A LaTeX parser reads the title back as the user wrote it (pylatexenc renders
    # \textasciicircum as the spacing circumflex U+02C6, which is how LaTeX prints ^ in text).
    assert _section_title(source).replace("\u02c6", "^") == HOSTILE
    assert cli("export", "--all", "--format", "tex", "--out", out).code == 0
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:  # make test installs TeX where it can; the parser check above still ran
        return
    doc = out / "standalone.tex"
    doc.write_text(standalone(source))
    for name in ("standalone.tex", "logbook.tex"):
        run = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", name], cwd=out,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-2000:]
        assert (out / name.replace(".tex", ".pdf")).read_bytes()[:5] == b"%PDF-"


def test_markdown_injection_is_neutralised(cli, tmp_path, db_path, fixed_registration):
    make_entry(cli, tmp_path, title=INJECTION, tags="['<img src=x onerror=alert(1)>']")
    add_runs(db_path, "baseline", [0.5, 0.51, 0.49, 0.52, 0.48, 0.5])
    add_runs(db_path, "gated", [0.5, 0.51, 0.49, 0.52, 0.48, 0.5])
    out = tmp_path / "md"
    cli("export", "--all", "--out", out)
    html = MarkdownIt("commonmark").enable("table").render((out / "logbook.md").read_text())
    assert "<script" not in html and "<a " not in html and "<strong>bold</strong>" not in html
    assert all(src.startswith("figures/") for src in re.findall(r'<img src="([^"]*)"', html))
    assert html.count("<h1>") == 1
    # the title reaches the reader as the text it is
    literal = "[click](javascript:alert(1)) &lt;script&gt;alert(1)&lt;/script&gt; **bold** | cell # not a heading"
    assert f"<h3>{literal}</h3>" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_json_and_csv_load_in_pandas_with_one_call(cli, fixed_entry, tmp_path):
    out = tmp_path / "tables"
    assert cli("export", "1", "--format", "json", "--out", out).code == 0
    assert cli("export", "1", "--format", "csv", "--out", out).code == 0
    stem = out / "extra-output-gate-in-the-recurrent-cell"
    from_json = pd.read_json(stem.with_suffix(".json"))
    from_csv = pd.read_csv(stem.with_suffix(".csv"))
    for frame in (from_json, from_csv):
        assert len(frame) == 12
        assert {"entry", "arm", "seed", "status", "val_loss", "commit", "verdict"} <= set(frame.columns)
        assert frame.loc[frame.arm == "baseline", "val_loss"].tolist() == [0.512, 0.498, 0.505, 0.520, 0.491, 0.509]
        assert frame.loc[frame.status == "crashed", "val_loss"].isna().all()
        assert (frame.seed.tolist()) == [101, 102, 103, 104, 105, 106] * 2
    verdict = json.loads(stem.with_suffix(".verdict.json").read_text())[0]
    assert verdict["verdict"] == from_json.verdict.iloc[0] and verdict["comparisons"][0]["excluded_candidate"] == 1
    assert sorted(p.name for p in out.iterdir()) == [stem.name + suffix for suffix in (".csv", ".json", ".verdict.json")]


def test_whole_logbook_never_reports_entries_without_results_as_results(cli, tmp_path, db_path, fixed_registration):
    make_entry(cli, tmp_path, title="First idea", tags="[rnn]")
    make_entry(cli, tmp_path, title="Second idea", tags="[rnn, optim]")
    out = tmp_path / "all"
    assert cli("export", "--all", "--out", out).code == 0
    text = (out / "logbook.md").read_text()
    assert text.startswith("# Negative-results logbook")
    section = text.split("## Negative and inconclusive results")[1].split("## Registered, not yet run")[0]
    assert section.strip() == "None yet."  # never run: no verdict to report (tests/test_writeup_paper.py groups results)
    unrun = text.split("## Registered, not yet run")[1].split("## Entries")[0]
    assert unrun.count("**First idea**") == 1 and unrun.count("**Second idea**") == 1
    only = tmp_path / "only"
    assert cli("export", "--all", "--verdict", "positive", "--out", only).code == 0
    assert "First idea" not in (only / "logbook.md").read_text()
    bad = cli("export", "--all", "--verdict", "maybe")
    assert (bad.code, bad.err) == (2, "--verdict: expected a comma-separated list of positive, negative, inconclusive, got maybe\n")
    assert cli("export").code == 2
