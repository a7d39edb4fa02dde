"""Hostile hypothesis files: every one is refused through `logbook new FILE --register` with exit
code 2, exactly one line on stderr that names the file and the field, nothing on stdout, and the
database byte-identical. Then a Hypothesis fuzz test over malformed files asserts the same."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLE_YAML, TOML_EXAMPLE

TITLE = "title: Extra output gate in the recurrent cell"


def _swap(old: str, new: str, text: str = EXAMPLE_YAML) -> str:
    assert old in text, old
    return text.replace(old, new)


def _deep_yaml(depth: int) -> str:
    return _swap("  gated: {cell: gated, hidden: 64, lr: 0.001}", "  gated: {x: " + "[" * depth + "]" * depth + "}")


# (file name, content, the field path the one line must name, a fragment of what was expected)
HOSTILE = [
    ("delta-digits.yaml", _swap("min_effect: 0.01", "min_effect: " + "9" * 400), "min_effect", "finite number"),
    ("alpha-digits.yaml", _swap("alpha: 0.05", "alpha: 1" + "0" * 400), "alpha", "between 0 and 0.5"),
    ("timeout-digits.yaml", _swap("trainer: seq-gating", "trainer: {name: seq-gating, timeout: " + "9" * 400 + "}"),
     "trainer.timeout", "positive number of seconds"),
    ("seeds-5000-digits.yaml", _swap("seeds: 10", "seeds: " + "7" * 5000), "(syntax)", "numbers of a sensible size"),
    ("seeds-4000-digits.yaml", _swap("seeds: 10", "seeds: " + "7" * 4000), "seeds", "whole number of seeds"),
    ("complex-key.yaml", "? [a, b]\n: 1\n" + EXAMPLE_YAML, "(syntax)", "plain key"),
    ("complex-arm-key.yaml", _swap("  gated: {", "  ? {x: 1}\n  : {}\n  gated: {"), "(syntax)", "plain key"),
    ("deep-20000.yaml", "title: " + "[" * 20000 + "]" * 20000 + "\n", "(syntax)", "levels of nesting"),
    ("deep-20000.toml", "title = " + "[" * 20000 + "]" * 20000 + "\n", "(syntax)", "levels of nesting"),
    ("deep-block.yaml", "title:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 1200)), "(syntax)", "levels of nesting"),
    ("deep-arm-900.yaml", _deep_yaml(900), "arms.gated.x", "levels of nesting"),
    ("deep-arm-30.yaml", _deep_yaml(30), "arms.gated.x", "levels of nesting"),
    ("metric-newline.yaml", _swap("metric: val_loss", 'metric: "val_loss\\n"'), "metric", "metric name"),
    ("title-nul.yaml", _swap(TITLE, 'title: "Extra \\0 output gate"'), "title", "control characters"),
    ("title-tab.yaml", _swap(TITLE, 'title: "Extra\\toutput gate"'), "title", "control characters"),
    ("title-c1.yaml", _swap(TITLE, 'title: "Extra \\x9b31m output gate"'), "title", "control characters"),
    ("hypothesis-escape.yaml", _swap("hypothesis: An extra", 'hypothesis: "\\e]0;pwned\\a\\e[2J An extra'
                                     ).replace("adding task\n", 'adding task"\n', 1), "hypothesis", "U+001B"),
    ("tag-escape.toml", _swap('"negative-results"]', '"a\\u001b[31m"]', TOML_EXAMPLE), "tags.1", "control characters"),
    ("config-escape.yaml", _swap("{cell: gated,", '{cell: "\\e[2J", x: 1,'), "arms.gated.cell", "control characters"),
    ("unterminated.yaml", _swap("trainer: seq-gating", "trainer: {command: \"python train.py 'unterminated {seed}\"}"),
     "trainer.command", "splits into words"),
    ("format-width.yaml", _swap("trainer: seq-gating", "trainer: {command: 'python t.py {seed:>99999999999}'}"),
     "trainer.command", "widths up to"),
    ("format-conversion.yaml", _swap("trainer: seq-gating", "trainer: {command: 'python t.py {seed!z}'}"),
     "trainer.command", "conversion"),
    ("format-attribute.yaml", _swap("trainer: seq-gating", "trainer: {command: 'python t.py {seed.__class__}'}"),
     "trainer.command", "plain names"),
    ("format-unbalanced.yaml", _swap("trainer: seq-gating", "trainer: {command: 'python t.py {seed'}"),
     "trainer.command", "balanced braces"),
    ("regex-trailing.yaml", _swap("trainer: seq-gating", "trainer: {command: 'python t.py {seed}', metrics: {val_loss: '(('}}"),
     "trainer.metrics.val_loss", "valid regular expression"),
    ("many-arms.yaml", _swap("  gated: {cell: gated, hidden: 64, lr: 0.001}", "\n".join(f"  a{i}: {{}}" for i in range(70))),
     "arms", "at most 64 items"),
    ("many-tags.yaml", _swap("tags: [rnn, negative-results]", "tags: [" + ", ".join(f"t{i}" for i in range(40)) + "]"),
     "tags", "at most 32 items"),
    ("long-title.yaml", _swap("title: Extra output gate in the recurrent cell", "title: " + "x" * 300), "title", "at most 200"),
    ("auto.yaml", _swap("min_effect: 0.01", "min_effect: auto"), "min_effect", "circular"),
    ("laughs.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcde", "bcdef")), "(document)", "at most 100,000 values"),
    ("date.yaml", _swap("title: Extra output gate in the recurrent cell", "title: 2026-11-23"), "title", "JSON-compatible"),
    ("int-key.yaml", EXAMPLE_YAML + "7: seven\n", "7", "text keys"),
    ("nan-config.yaml", _swap("{cell: gated,", "{x: .nan, cell: gated,"), "arms.gated.x", "finite number"),
    ("not-utf8.yaml", None, "(file)", "UTF-8"),
    ("huge.yaml", "arms:\n" + "".join(f"  a{i}: {{}}\n" for i in range(100_000)), "(file)", "at most 1,000,000 bytes"),
    ("slurm.yaml", EXAMPLE_YAML + "executor: slurm\nslurm: {gpus_per_task: -1}\n", "slurm.gpus_per_task", "whole number of GPUs"),
    ("variance.yaml", EXAMPLE_YAML + "variance_study: {sources: [init, weather], seeds: 4}\n", "variance_study.sources.1",
     "init, data, noise, split"),
    ("pilot-shape.yaml", _swap("min_effect: 0.01", "min_effect: {from_pilot: pilot, sd_multiple: 0}"),
     "min_effect.sd_multiple", "above 0"),
]


@pytest.fixture
def logbook_db(cli, db_path):
    assert cli("init").code == 0
    return db_path


def _digest(path) -> str:
    """What the logbook holds (schema and rows), not its file's bytes: SQLite may checkpoint its
    write-ahead log into the file whenever a connection closes, which changes bytes, not content."""
    con = sqlite3.connect(path)
    try:
        return hashlib.sha256("\n".join(con.iterdump()).encode("utf-8")).hexdigest()
    finally:
        con.close()


@pytest.mark.parametrize(("name", "content", "field", "expected"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_file_is_one_line_exit_2_and_nothing_written(cli, tmp_path, logbook_db, name, content, field, expected):
    before = _digest(logbook_db)
    path = tmp_path / name
    if content is None:
        path.write_bytes(b"title: \xff\xfe broken\n")
    else:
        path.write_text(content, encoding="utf-8")
    result = cli("new", path, "--register")
    assert (result.code, result.out) == (2, "")
    lines = result.err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: {field}"), lines[0]
    assert expected in lines[0]
    assert "\x1b" not in result.err and "Traceback" not in result.err
    assert _digest(logbook_db) == before


def test_accepted_blocks_pass_through_to_the_spec_unchanged(tmp_path):
    from logbook.entries.file import load_entry_file

    path = tmp_path / "blocks.yaml"
    path.write_text(EXAMPLE_YAML + (
        "executor: slurm\n"
        "slurm: {partition: gpu, gpus_per_task: 1, cpus_per_task: 8, mem: 32G, time: '1-12:00:00', account: lab,\n"
        "        qos: normal, constraint: 'a100|h100', max_running: 4, sbatch: [--exclusive, --nice=10]}\n"
        "variance_study: {sources: [init, data, noise, split], seeds: 5}\n"
    ))
    spec = load_entry_file(path)
    assert spec.executor == "slurm"
    assert spec.slurm == {"partition": "gpu", "gpus_per_task": 1, "cpus_per_task": 8, "mem": "32G", "time": "1-12:00:00",
                          "account": "lab", "qos": "normal", "constraint": "a100|h100", "max_running": 4,
                          "sbatch": ["--exclusive", "--nice=10"]}
    assert spec.variance_study == {"sources": ["init", "data", "noise", "split"], "seeds": 5}
    assert load_entry_file(_write(tmp_path, "plain.yaml", EXAMPLE_YAML)).slurm is None


def _write(folder, name, text):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_tab_and_newline_are_allowed_in_multi_line_fields_only(tmp_path):
    from logbook.entries.file import load_entry_file

    text = _swap("hypothesis: An extra output gate lowers validation loss on the adding task",
                 "hypothesis: |\n  An extra output gate\n  \tlowers validation loss\nnotes: \"line one\\n\\tline two\"")
    spec = load_entry_file(_write(tmp_path, "multi.yaml", text))
    assert spec.hypothesis == "An extra output gate\n\tlowers validation loss"
    assert spec.notes == "line one\n\tline two"


def test_yaml_merge_keys_still_work(tmp_path):
    from logbook.entries.file import load_entry_file

    text = _swap("  baseline: {cell: lstm, hidden: 64, lr: 0.001}\n  gated: {cell: gated, hidden: 64, lr: 0.001}",
                 "  baseline: &base {cell: lstm, hidden: 64, lr: 0.001}\n  gated: {<<: *base, cell: gated}")
    spec = load_entry_file(_write(tmp_path, "merge.yaml", text))
    assert spec.arms[1].config == {"cell": "gated", "hidden": 64, "lr": 0.001}


def test_a_command_is_checked_the_way_the_command_trainer_builds_it(tmp_path):
    """What the validator accepts, the command trainer can split and format with real values."""
    from logbook.entries.file import load_entry_file
    from trainers.command import build_argv

    command = "python train.py --seed {seed!s} --out '{run_dir}/x y' --cell {cell:>8} --lr={lr}"
    spec = load_entry_file(_write(tmp_path, "cmd.yaml", _swap("trainer: seq-gating", "trainer: {command: \"" + command + "\"}")))
    argv = build_argv(spec.trainer.command, 7, tmp_path, spec.arms[0].config)
    assert argv == ["python", "train.py", "--seed", "7", "--out", f"{tmp_path}/x y", "--cell", "    lstm", "--lr=0.001"]


# --- fuzzing -------------------------------------------------------------------------------------

_BASES = {"yaml": EXAMPLE_YAML.splitlines(keepends=True), "toml": TOML_EXAMPLE.splitlines(keepends=True)}
_NASTY = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(["\x1b[2J", "\x1b]0;t\x07", "\x00", "\x9b", "? [a, b]\n: 1\n", "[" * 50, "{" * 50, "9" * 350,
                     "{seed!z}", "{seed:>99999999999}", "'unterminated {seed}", "&a [*a]", "*b", "!!python/object:os.system",
                     "auto", ".nan", "-.inf", "1e999", "0x1F", "~", "|\n  x", ">-", "<<: 3", "- - -", ":", "'", '"']),
)


@st.composite
def malformed_entry_files(draw) -> tuple[str, str]:
    """The documented example with a few lines replaced by, or spliced with, hostile text."""
    fmt = draw(st.sampled_from(sorted(_BASES)))
    lines = list(_BASES[fmt])
    sep = ":" if fmt == "yaml" else " ="
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        key = lines[i].split(sep, 1)[0]
        junk = draw(_NASTY)
        lines[i] = draw(st.sampled_from([f"{key}{sep} {junk}\n", f"{key}{sep} {json.dumps(junk)}\n", junk + "\n",
                                         lines[i].rstrip("\n") + junk + "\n"]))
    return "".join(lines), fmt


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=malformed_entry_files())
def test_fuzzed_entry_files_are_refused_cleanly_or_accepted_whole(cli, tmp_path, logbook_db, case):
    text, fmt = case
    path = tmp_path / f"fuzz.{fmt}"
    path.write_text(text, encoding="utf-8")
    before = _digest(logbook_db)
    count = sqlite3.connect(logbook_db).execute("SELECT count(*) FROM hypothesis").fetchone()[0]
    result = cli("new", path)
    if result.code == 0:  # the junk landed somewhere harmless (a comment, a valid value): a whole draft
        con = sqlite3.connect(logbook_db)
        assert con.execute("SELECT count(*) FROM hypothesis").fetchone()[0] == count + 1
        con.close()
        return
    assert result.code == 2, result.err
    assert result.out == ""
    lines = result.err.splitlines()
    # one line per problem, each naming the file, a field (or the syntax) and what was expected
    said = (": expected ", ": missing; required: ", ": unknown field; expected ")
    assert lines and all(line.startswith(f"{path}: ") and any(w in line for w in said) for line in lines), lines
    assert "Traceback" not in result.err and "\x1b" not in result.err
    assert _digest(logbook_db) == before
