"""Hypothesis files: the documented example is accepted exactly; bad files are refused with
`FILE: field: what was expected`, exit code 2, and nothing written."""

from __future__ import annotations

import hashlib
import sqlite3
import textwrap

import pytest

from logbook.entries.file import load_entry_file
from tests.conftest import EXAMPLE_YAML, TOML_EXAMPLE

COMMAND_YAML = textwrap.dedent(
    """\
    title: Cosine schedule
    hypothesis: A cosine schedule lowers test loss
    metric: test_loss
    goal: minimize
    min_effect: 0.02
    seeds: 5
    trainer:
      command: python train.py --seed {seed} --type {type} --out {run_dir}
      metrics: {test_loss: 'test loss: ([0-9.eE+-]+)'}
    arms:
      constant: {type: constant}
      cosine: {type: cosine}
    """
)


def test_documented_yaml_example_is_accepted_exactly(example_file):
    spec = load_entry_file(example_file)
    assert spec.title == "Extra output gate in the recurrent cell"
    assert spec.hypothesis == "An extra output gate lowers validation loss on the adding task"
    assert (spec.metric, spec.goal, spec.min_effect, spec.alpha, spec.seeds) == ("val_loss", "minimize", 0.01, 0.05, 10)
    assert spec.trainer.name == "seq-gating" and spec.trainer.command is None
    assert [(a.name, a.role, a.config) for a in spec.arms] == [
        ("baseline", "baseline", {"cell": "lstm", "hidden": 64, "lr": 0.001}),
        ("gated", "candidate", {"cell": "gated", "hidden": 64, "lr": 0.001}),
    ]
    assert spec.baseline == "baseline" and spec.tags == ("rnn", "negative-results")


def test_toml_gives_the_same_entry_as_yaml(example_file, tmp_path):
    path = tmp_path / "gated.toml"
    path.write_text(TOML_EXAMPLE)
    yaml_spec, toml_spec = load_entry_file(example_file), load_entry_file(path)
    for field in ("title", "hypothesis", "metric", "goal", "min_effect", "alpha", "seeds", "trainer", "arms", "baseline", "tags"):
        assert getattr(yaml_spec, field) == getattr(toml_spec, field), field


def test_command_trainer_is_accepted(tmp_path):
    path = tmp_path / "cmd.yml"
    path.write_text(COMMAND_YAML)
    spec = load_entry_file(path)
    assert spec.trainer.command == "python train.py --seed {seed} --type {type} --out {run_dir}"
    assert spec.trainer.metrics == {"test_loss": "test loss: ([0-9.eE+-]+)"}
    assert spec.min_effect == 0.02 and spec.min_effect_pilot is None
    assert spec.baseline == "constant"  # no arm named baseline: the first


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


# (file name, content, the exact line expected on stderr)
INVALID = [
    ("goal.yaml", _replace(EXAMPLE_YAML, "goal: minimize", "goal: lower"),
     "goal.yaml: goal: expected minimize or maximize, got 'lower'"),
    ("delta.yaml", _replace(EXAMPLE_YAML, "min_effect: 0.01", "min_effect: -0.5"),
     "delta.yaml: min_effect: expected a finite number ≥ 0 (in metric units), or {from_pilot: ENTRY, sd_multiple: 0.5}, got -0.5"),
    ("alpha.yaml", _replace(EXAMPLE_YAML, "alpha: 0.05", "alpha: 0.7"),
     "alpha.yaml: alpha: expected a number between 0 and 0.5 (exclusive), got 0.7"),
    ("seeds.yaml", _replace(EXAMPLE_YAML, "seeds: 10", "seeds: 3"),
     "seeds.yaml: seeds: expected a whole number of seeds per arm from 5 (the verdict needs five) to 10000, got 3"),
    ("seedsbool.yaml", _replace(EXAMPLE_YAML, "seeds: 10", "seeds: yes"),
     "seedsbool.yaml: seeds: expected a whole number of seeds per arm from 5 (the verdict needs five) to 10000, got True"),
    ("onearm.yaml", _replace(EXAMPLE_YAML, "  gated: {cell: gated, hidden: 64, lr: 0.001}\n", ""),
     "onearm.yaml: arms: expected a mapping of at least two arms (a baseline and a candidate), got {'baseline': {'cell': 'lstm', 'hidden': 64, 'lr': 0.001}}"),
    ("basename.yaml", _replace(EXAMPLE_YAML, "baseline: baseline      #", "baseline: control      #"),
     "basename.yaml: baseline: expected the name of an arm (baseline, gated), got 'control'"),
    ("unknown.yaml", EXAMPLE_YAML + "epochs: 3\n",
     "unknown.yaml: epochs: unknown field; expected one of title, hypothesis, metric, goal, min_effect, alpha, seeds, trainer, arms, baseline, tags, deterministic, notes, executor, slurm, variance_study"),
    ("missing.yaml", _replace(EXAMPLE_YAML, "metric: val_loss\n", ""),
     "missing.yaml: metric: missing; required: the metric the verdict is about"),
    ("trainer.yaml", _replace(EXAMPLE_YAML, "trainer: seq-gating", "trainer: python train.py"),
     "trainer.yaml: trainer: expected a registered trainer name or module:callable, got 'python train.py'"),
    ("regex.yaml", _replace(COMMAND_YAML, "'test loss: ([0-9.eE+-]+)'", "'test loss: [0-9.]+'"),
     "regex.yaml: trainer.metrics.test_loss: expected a regular expression with exactly one capture group for the value, got 'test loss: [0-9.]+'"),
    ("placeholder.yaml", _replace(COMMAND_YAML, "--type {type}", "--type {kind}"),
     "placeholder.yaml: trainer.command: expected placeholder {kind} to be {seed}, {run_dir} or a config key of every arm (missing in arms: constant, cosine)"),
    ("dupkey.yaml", EXAMPLE_YAML + "seeds: 20\n",
     "dupkey.yaml: (syntax): expected valid YAML at line 14, column 1 (key 'seeds' is given twice)"),
    ("syntax.yaml", "title: [unclosed\n",
     "syntax.yaml: (syntax): expected valid YAML at line 2, column 1 (did not find expected ',' or ']')"),
    ("broken.toml", 'title = "x\n',
     "broken.toml: (syntax): expected valid TOML (Illegal character '\\n' (at line 1, column 11))"),
    ("notes.txt", EXAMPLE_YAML,
     "notes.txt: (file): expected a .yaml, .yml or .toml hypothesis file"),
    ("list.yaml", "- a\n- b\n",
     "list.yaml: (document): expected a mapping of fields (title, hypothesis, metric, ...)"),
    ("armcfg.yaml", _replace(EXAMPLE_YAML, "  gated: {cell: gated, hidden: 64, lr: 0.001}", "  gated: [1, 2]"),
     "armcfg.yaml: arms.gated: expected a mapping of config keys to values, got [1, 2]"),
]


@pytest.mark.parametrize(("name", "content", "expected"), INVALID, ids=[case[0] for case in INVALID])
def test_invalid_file_is_refused_with_its_exact_message_and_nothing_written(cli, tmp_path, db_path, name, content, expected):
    cli("init")
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = cli("new", path, "--register")
    assert result.code == 2
    assert result.out == ""
    assert result.err.splitlines()[0] == str(tmp_path / name) + expected[len(name):]
    con = sqlite3.connect(db_path)
    assert con.execute("SELECT count(*) FROM hypothesis").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM arm").fetchone()[0] == 0
    con.close()
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before


def test_every_problem_is_reported_not_just_the_first(cli, tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(_replace(_replace(EXAMPLE_YAML, "goal: minimize", "goal: up"), "seeds: 10", "seeds: 1"))
    result = cli("new", path)
    assert result.code == 2
    lines = result.err.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("goal: expected minimize or maximize, got 'up'")
    assert lines[1].startswith(f"{path}: seeds: expected a whole number")


def test_missing_file_is_a_one_line_error(cli, tmp_path):
    result = cli("new", tmp_path / "absent.yaml")
    assert (result.code, result.err) == (2, f"{tmp_path / 'absent.yaml'}: (file): no such file\n")
