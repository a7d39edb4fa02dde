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
