"""Metric patterns of a command trainer: a pattern that also matches another declared metric's
lines (``loss: (…)`` against ``test loss: 0.31``) is warned about when the file is checked, naming
both; anchored patterns are not."""

from __future__ import annotations

import re
import textwrap

import pytest

from logbook.entries.problems import metric_overlaps, sample_line

ENTRY = textwrap.dedent("""\
    title: Patterns
    hypothesis: h
    metric: loss
    goal: minimize
    min_effect: 0.01
    seeds: 5
    trainer:
      command: python train.py --seed {{seed}}
      metrics: {{loss: '{loss}', test_loss: 'test loss: ([0-9.eE+-]+)'}}
    arms:
      baseline: {{}}
      wide: {{}}
    """)


def test_an_unanchored_pattern_that_matches_another_metric_is_warned_about(cli, tmp_path):
    path = tmp_path / "entry.yaml"
    path.write_text(ENTRY.format(loss="loss: ([0-9.eE+-]+)"))
    result = cli("new", path)
    assert result.code == 0, result.err  # a warning, not a refusal: the entry is added
    warnings = [line for line in result.err.splitlines() if ": warning: " in line]
    assert warnings == [
        f"{path}: trainer.metrics.loss: warning: the pattern 'loss: ([0-9.eE+-]+)' also matches test_loss's lines "
        "(such as 'test loss: 0'), so loss would take test_loss's values too; anchor it (for example "
        "'^loss: ([0-9.eE+-]+)') or make it more specific"]
    anchored = tmp_path / "anchored.yaml"
    anchored.write_text(ENTRY.format(loss="^loss: ([0-9.eE+-]+)"))
    result = cli("new", anchored)
    assert result.code == 0 and "warning" not in result.err


def test_what_the_command_trainer_would_read_agrees_with_the_warning():
    """The overlap is real: on the sample line, the unanchored pattern takes the test value."""
    loose, anchored, test = r"loss: ([0-9.eE+-]+)", r"^loss: ([0-9.eE+-]+)", r"test loss: ([0-9.eE+-]+)"
    line = sample_line(test)
    assert re.search(loose, line) and not re.search(anchored, line)
    assert metric_overlaps({"loss": loose, "test_loss": test})[0][0] == "trainer.metrics.loss"
    assert metric_overlaps({"loss": anchored, "test_loss": test}) == []
    assert metric_overlaps({"acc": r"acc=(\d+)", "loss": r"loss=(\S+)"}) == []


@pytest.mark.parametrize("pattern", [
    r"loss: ([0-9.eE+-]+)", r"^step \d+ val_loss=(\S+)$", r"(?:val|test)_acc: (.+)", r"acc (\d+\.\d*)%",
    r"\[eval\] top-1 ([0-9]{1,3}\.[0-9]+)", r"loss\s*[:=]\s*(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)",
])
def test_sample_lines_match_their_own_pattern(pattern):
    line = sample_line(pattern)
    assert line is not None and re.search(pattern, line)
