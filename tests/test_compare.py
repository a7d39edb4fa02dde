"""`logbook compare` and the compare screen: configuration side by side with differences marked,
per-arm summaries (cross-checked with SciPy), every verdict with its interval, and the screen at
80×24 and 120×40."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from tests.test_tui import loaded, logbook_db, make_app  # noqa: F401  (logbook_db is a fixture)


def test_compare_two_entries_as_json(cli, logbook_db):  # noqa: F811
    result = cli("compare", "1", "cosine", "--json")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert [e["slug"] for e in out["entries"]] == ["extra-output-gate-in-the-recurrent-cell", "cosine-schedule"]
    keys = [a["key"] for a in out["arms"]]
    assert keys == ["extra-output-gate-in-the-recurrent-cell:baseline", "extra-output-gate-in-the-recurrent-cell:gated",
                    "cosine-schedule:baseline", "cosine-schedule:gated"]
    # per-arm summaries against SciPy, from the values the verdict counts
    gated = out["arms"][1]
    assert gated["values"] == [0.507, 0.502, 0.499, 0.515, 0.511] and gated["excluded"] == 1
    described = stats.describe(gated["values"])
    assert gated["n"] == described.nobs
    assert gated["mean"] == pytest.approx(described.mean, rel=1e-12)
    assert gated["sd"] == pytest.approx(math.sqrt(described.variance), rel=1e-12)
    assert out["arms"][2]["sd"] == pytest.approx(np.std(out["arms"][2]["values"], ddof=1), rel=1e-12)
    # configuration: the arms' cells differ, the shared settings do not
    rows = {r["key"]: r for r in out["config"]}
    assert rows["config.cell"]["differs"] and rows["config.cell"]["values"][keys[0]] == "lstm"
    assert not rows["metric"]["differs"] and not rows["min_effect"]["differs"] and not rows["trainer"]["differs"]
    # verdicts: the same numbers `verdict --json` gives
    for entry in ("1", "2"):
        judged = json.loads(cli("verdict", entry, "--json").out)
        mine = [c for c in out["comparisons"] if c["entry"] == judged["entry"]]
        assert [(c["candidate"], c["verdict"], c["effect"], c["ci_low"], c["ci_high"]) for c in mine] == [
            (c["candidate_name"], c["verdict"], c["effect"], c["ci_low"], c["ci_high"]) for c in judged["comparisons"]]
    assert out["same_metric"] is True


def test_compare_single_arms_and_text(cli, logbook_db):  # noqa: F811
    out = json.loads(cli("compare", "1:gated", "2:gated", "--json").out)
    assert [a["key"] for a in out["arms"]] == ["extra-output-gate-in-the-recurrent-cell:gated", "cosine-schedule:gated"]
    assert {c["entry"] for c in out["comparisons"]} == {"extra-output-gate-in-the-recurrent-cell", "cosine-schedule"}
    text = cli("compare", "1:baseline", "2:baseline")
    assert text.code == 0, text.err
    assert "configuration (* differs)" in text.out
    assert "verdicts: no candidate among the chosen arms" in text.out  # baselines only: nothing judged between them
    full = cli("compare", "1")
    lines = full.out.splitlines()
    assert any(line.startswith("* config.cell") for line in lines)
    assert any(line.startswith("  metric") for line in lines)
    assert any(line.startswith("  extra-output-gate-in-the-recurrent-cell: gated vs baseline: ") for line in lines)


@pytest.mark.parametrize("args, expected", [
    (["1:nope", "2"], "ENTRY:ARM: extra-output-gate-in-the-recurrent-cell has no arm 'nope'; expected one of baseline, gated\n"),
    (["1", "1"], "ENTRY: '1' names extra-output-gate-in-the-recurrent-cell again; expected each entry (or each arm of it) once\n"),
    (["1:gated"], "ENTRY: 1:gated names 1 arm; expected at least two arms to compare (two entries, or an entry with two arms)\n"),
    (["1:"], "ENTRY: expected ENTRY or ENTRY:ARM (an id or slug prefix, then an arm name), got '1:'\n"),
    ([], "ENTRY: expected at least one ENTRY or ENTRY:ARM to compare\n"),
])
def test_compare_refuses_bad_references(cli, logbook_db, args, expected):  # noqa: F811
    result = cli("compare", *args)
    assert (result.code, result.err, result.out) == (2, expected, "")
    as_json = cli("compare", *args, "--json")
    assert as_json.code == 2 and json.loads(as_json.err)["error"] == expected.strip()


async def test_space_marks_entries_and_c_opens_the_compare_screen(logbook_db):  # noqa: F811
    from textual.widgets import DataTable, Static

    from logbook.tui.screens.compare import CompareScreen

    app = make_app(logbook_db)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await loaded(pilot, "#entries", 3)
        await pilot.press("space")  # entry 1
        assert app.screen.marked == {1}
        assert str(table.get_cell_at((0, 0))) == "✓1"
        await pilot.press("down", "space", "up", "space", "space")  # entry 2 marked; 1 unmarked and marked again
        assert app.screen.marked == {1, 2}
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen) and app.screen.refs == ["1", "2"]
        config = await loaded(pilot, "#compare-config", 7)
        assert [str(c.label) for c in config.columns.values()] == ["setting", "1:baseline", "1:gated", "2:baseline", "2:gated"]
        differs = [str(config.get_row_at(i)[0]) for i in range(config.row_count) if str(config.get_row_at(i)[0]).startswith("*")]
        assert differs == ["* config.cell"]
        verdicts = app.screen.query_one("#compare-verdicts", DataTable)
        assert verdicts.row_count == 2
        assert [(str(verdicts.get_row_at(i)[0]), str(verdicts.get_row_at(i)[2]).strip()) for i in range(2)] == [("1", "NEGATIVE"), ("2", "POSITIVE")]
        plot = str(app.screen.query_one("#compare-distribution").render())
        assert "val_loss per seed, one axis" in plot and "1:gated" in plot and "✗1" in plot
        curves = str(app.screen.query_one("#compare-curves", Static).render())
        assert "mean loss over seeds, one scale" in curves and "1:baseline" in curves
        await pilot.press("escape")
        assert not isinstance(app.screen, CompareScreen) and app.screen.marked == {1, 2}


async def test_compare_with_nothing_marked_takes_the_entry_at_the_cursor(logbook_db):  # noqa: F811
    from logbook.tui.screens.compare import CompareScreen

    app = make_app(logbook_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, "#entries", 3)
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen) and app.screen.refs == ["1"]
        config = await loaded(pilot, "#compare-config", 7)
        assert len(config.columns) == 3


def _compare_before(refs):
    async def run_before(pilot) -> None:
        from logbook.tui.screens.compare import CompareScreen

        await loaded(pilot, "#entries", 3)
        pilot.app.push_screen(CompareScreen(refs))
        await loaded(pilot, "#compare-verdicts", 2)
        await pilot.pause(0.2)
    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_compare(snap_compare, logbook_db, size):  # noqa: F811
    assert snap_compare(make_app(logbook_db), terminal_size=size, run_before=_compare_before(["1", "2"]))
