"""The entry-file schema: `logbook schema` is a valid JSON Schema that agrees with the validator,
and δ is required: a number, or derived at registration from a registered pilot's finished runs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

from tests.conftest import EXAMPLE_YAML

# --- the JSON Schema ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict:
    from click.testing import CliRunner

    from logbook.cli import cli

    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(document)
    return document


def _errors(schema: dict, document: dict) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(document)]


def test_packaged_examples_and_every_block_validate_against_the_schema(schema):
    examples = [p for p in (resources.files("logbook") / "data").iterdir() if p.name.endswith(".yaml")]
    assert {"gated-rnn.yaml", "demo-gated-rnn.yaml"} <= {p.name for p in examples}
    for example in examples:
        document = yaml.safe_load(example.read_text(encoding="utf-8"))
        assert _errors(schema, document) == [], example.name
    full = yaml.safe_load(EXAMPLE_YAML) | {
        "min_effect": {"from_pilot": "pilot-run", "sd_multiple": 0.5},
        "trainer": {"command": "python train.py --seed {seed}", "metrics": {"val_loss": "loss: ([0-9.]+)"}, "timeout": 60},
        "executor": "slurm", "slurm": {"partition": "gpu", "gpus_per_task": 1, "mem": "16G", "time": "4:00:00", "sbatch": ["--exclusive"]},
        "variance_study": {"sources": ["init", "data"], "seeds": 5}, "deterministic": True, "notes": "free text",
    }
    assert _errors(schema, full) == []
    assert set(schema["properties"]) >= {"executor", "slurm", "variance_study"}
    assert set(schema["required"]) == {"title", "hypothesis", "metric", "goal", "min_effect", "seeds", "trainer", "arms"}


BAD = [
    {"goal": "lower"}, {"seeds": 3}, {"seeds": True}, {"min_effect": "auto"}, {"min_effect": -0.5}, {"alpha": 0.7},
    {"metric": "val_loss\n"}, {"epochs": 3}, {"arms": {"only": {}}}, {"trainer": "python train.py"},
    {"executor": "ray"}, {"slurm": {"gpus_per_task": -1}}, {"variance_study": {"sources": ["weather"], "seeds": 5}},
    {"tags": [f"t{i}" for i in range(40)]}, {"min_effect": {"from_pilot": "p"}},
]


@pytest.mark.parametrize("change", BAD, ids=[next(iter(c)) + "-" + str(i) for i, c in enumerate(BAD)])
def test_schema_and_validator_refuse_the_same_documents(schema, change, tmp_path):
    from logbook.entries.file import validate
    from logbook.errors import InputError

    document = yaml.safe_load(EXAMPLE_YAML) | change
    assert _errors(schema, document), change
    with pytest.raises(InputError) as refused:
        validate(document, label="doc")
    assert refused.value.lines[0].startswith(f"doc: {next(iter(change))}")


def test_readme_shows_how_to_use_the_schema_in_an_editor():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert "logbook schema > " in readme and "# yaml-language-server: $schema=" in readme
    assert "yaml.schemas" in readme  # VS Code / Neovim settings


# --- δ from a pilot ------------------------------------------------------------------------------

PILOT_VALUES = {"baseline": [0.50, 0.52, 0.47, 0.55, 0.51], "gated": [0.45, 0.49, 0.44, 0.48, None]}


def _entry_file(tmp_path, name: str, min_effect: str, metric: str = "val_loss"):
    path = tmp_path / name
    path.write_text(EXAMPLE_YAML.replace("min_effect: 0.01", f"min_effect: {min_effect}")
                    .replace("metric: val_loss", f"metric: {metric}")
                    .replace("title: Extra output gate in the recurrent cell", f"title: {name.split('.')[0]}"), encoding="utf-8")
    return path


def _add_runs(db, entry_id: int, values: dict[str, list[float | None]]) -> None:
    """Finished runs (None: a diverged seed) for the named arms of one entry, written with plain SQL."""
    con = sqlite3.connect(db)
    for arm, series in values.items():
        arm_id = con.execute("SELECT id FROM arm WHERE hypothesis_id = ? AND name = ?", (entry_id, arm)).fetchone()[0]
        for seed, value in enumerate(series):
            con.execute(
                "INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, ended_at, final_metrics,"
                " wall_time_s, cancel_requested) VALUES (?, ?, 'planned', ?, 1, '2026-05-04', '2026-05-04', ?, 1.0, 0)",
                (arm_id, 1000 + seed, "diverged" if value is None else "succeeded",
                 None if value is None else json.dumps({"val_loss": value})))
    con.commit()
    con.close()


def _ols_residual_sd(values: dict[str, list[float | None]]) -> float:
    """The pooled sd, independently: the residual sd of an OLS fit with one mean per arm (statsmodels)."""
    import statsmodels.api as sm

    rows = [(arm, v) for arm, series in values.items() for v in series if v is not None]
    names = sorted({arm for arm, _ in rows})
    design = np.array([[1.0 if arm == n else 0.0 for n in names] for arm, _ in rows])
    fit = sm.OLS(np.array([v for _, v in rows]), design).fit()
    return float(np.sqrt(fit.mse_resid))


@pytest.fixture
def pilot(cli, tmp_path, db_path):
    """A registered pilot with finished runs, and a candidate added by amendment (not registered)."""
    result = cli("new", _entry_file(tmp_path, "pilot.yaml", "0.01"), "--register", "--json")
    assert result.code == 0, result.err
    detail = json.loads(result.out)
    assert cli("amend", detail["slug"], "--field", "arms.wide", "--value", "{cell: wide}", "--reason", "try it").code == 0
    _add_runs(db_path, detail["id"], PILOT_VALUES | {"wide": [5.0, 9.0, 1.0, 7.0, 3.0]})
    return detail


def test_delta_from_a_pilot_is_resolved_at_registration_and_recorded(cli, tmp_path, db_path, pilot):
    result = cli("new", _entry_file(tmp_path, "main.yaml", f"{{from_pilot: {pilot['slug']}, sd_multiple: 0.5}}"),
                 "--register", "--json")
    assert result.code == 0, result.err
    detail = json.loads(result.out)
    expected_sd = _ols_residual_sd(PILOT_VALUES)  # the amended arm and the diverged seed are left out
    assert detail["min_effect"] == pytest.approx(0.5 * expected_sd, rel=1e-12)
    assert detail["min_effect_source"] == "pilot" and detail["registration_verified"] is True
    con = sqlite3.connect(db_path)
    content = json.loads(con.execute("SELECT registered_content FROM hypothesis WHERE id = ?", (detail["id"],)).fetchone()[0])
    con.close()
    source = content["min_effect_source"]
    assert content["min_effect"] == detail["min_effect"]
    assert source["from_pilot"] == pilot["slug"] and source["pilot_registration_hash"] == pilot["registration_hash"]
    assert source["pooled_sd"] == pytest.approx(expected_sd, rel=1e-12)
    assert (source["sd_multiple"], source["degrees_of_freedom"], source["arms"]) == (0.5, 7, ["baseline", "gated"])
    shown = cli("show", str(detail["id"]))
    assert "× pooled sd" in shown.out and f"of pilot {pilot['slug']}" in shown.out


def test_a_draft_resolves_its_pilot_when_it_is_registered_not_before(cli, tmp_path, db_path):
    first = json.loads(cli("new", _entry_file(tmp_path, "pilot.yaml", "0.01"), "--register", "--json").out)
    draft = cli("new", _entry_file(tmp_path, "main.yaml", f"{{from_pilot: {first['id']}, sd_multiple: 1}}"), "--json")
    assert draft.code == 0, draft.err
    draft = json.loads(draft.out)
    assert draft["min_effect"] is None and draft["min_effect_pilot"] == {"from_pilot": str(first["id"]), "sd_multiple": 1.0}
    assert "to be derived at registration" in cli("show", str(draft["id"])).out
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    early = cli("register", str(draft["id"]))
    assert early.code == 2 and early.out == ""
    assert early.err.splitlines() == [
        "ENTRY: min_effect.from_pilot: expected a pilot with finished runs that estimate the sd with 2+ degrees of freedom "
        f"(3 values in one arm, or 2 in each of two); {first['slug']} has 0 values of val_loss, 0"]
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before
    _add_runs(db_path, first["id"], PILOT_VALUES)
    late = cli("register", str(draft["id"]), "--json")
    assert late.code == 0, late.err
    assert json.loads(late.out)["min_effect"] == pytest.approx(_ols_residual_sd(PILOT_VALUES), rel=1e-12)


@pytest.mark.parametrize(("pilot_ref", "metric", "expected"), [
    ("nothing-like-it", "val_loss", "expected a registered pilot entry (ENTRY: expected an entry id or slug prefix; nothing matches 'nothing-like-it')"),
    ("draft", "val_loss", "expected a registered pilot entry; draft is a draft"),
    ("pilot", "accuracy", "expected a pilot measuring accuracy (δ is in its units); pilot measures val_loss"),
    ("bare", "val_loss", "expected a pilot with finished runs that estimate the sd with 2+ degrees of freedom "
                         "(3 values in one arm, or 2 in each of two); bare has 3 values of val_loss, 1"),
])
def test_new_register_with_an_unusable_pilot_writes_nothing(cli, tmp_path, db_path, pilot_ref, metric, expected):
    pilot = json.loads(cli("new", _entry_file(tmp_path, "pilot.yaml", "0.01"), "--register", "--json").out)
    _add_runs(db_path, pilot["id"], PILOT_VALUES)
    assert cli("new", _entry_file(tmp_path, "draft.yaml", "0.01")).code == 0
    bare = json.loads(cli("new", _entry_file(tmp_path, "bare.yaml", "0.01"), "--register", "--json").out)
    _add_runs(db_path, bare["id"], {"baseline": [0.1], "gated": [0.2, None, 0.3]})
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    path = _entry_file(tmp_path, "main.yaml", f"{{from_pilot: {pilot_ref}, sd_multiple: 0.5}}", metric=metric)
    result = cli("new", path, "--register")
    assert (result.code, result.out) == (2, "")
    assert result.err.splitlines() == [f"{path}: min_effect.from_pilot: {expected}"]
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before


def test_auto_delta_is_refused_with_the_reason_in_files_and_amendments(cli, tmp_path, example_file):
    path = _entry_file(tmp_path, "auto.yaml", "auto")
    result = cli("new", path)
    assert result.code == 2
    assert result.err.splitlines() == [
        f"{path}: min_effect: auto is refused (a δ derived from the data being judged is circular: with more seeds a real "
        "improvement is ever more often called negative): expected δ in metric units, or {from_pilot: ENTRY, sd_multiple: 0.5} "
        "to derive it from a registered pilot's runs"]
    assert cli("new", example_file, "--register").code == 0
    amended = cli("amend", "1", "--field", "min_effect", "--value", "{from_pilot: 1, sd_multiple: 1}", "--reason", "r")
    assert amended.code == 2
    assert amended.err == "--value: min_effect: expected a number in metric units (δ from a pilot is derived only at registration)\n"
