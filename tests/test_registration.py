"""Registration, provenance and amendments, with real git repositories in temporary folders."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from logbook.entries.registry import canonical_json, sha256_hex
from logbook.entries.provenance import capture_git
from tests.conftest import git, python_subprocess


def test_provenance_of_a_dirty_tree_with_an_untracked_file(git_repo, tmp_path):
    (git_repo / "train.py").write_text("print('loss: 0.5')  # tuned\n")
    (git_repo / "notes.txt").write_text("untracked\n")
    info = capture_git(git_repo / "README")
    assert info.in_repo and info.root == str(git_repo)
    assert info.commit == git(git_repo, "rev-parse", "HEAD")
    assert info.branch == "main"
    assert info.dirty is True
    assert info.untracked == ["notes.txt"]
    assert "+print('loss: 0.5')  # tuned" in info.diff and "notes.txt" not in info.diff
    # The recorded diff re-applies to a clean checkout of the recorded commit.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(git_repo), str(clone))
    (clone / "patch.diff").write_text(info.diff)
    git(clone, "apply", "patch.diff")
    assert (clone / "train.py").read_text() == "print('loss: 0.5')  # tuned\n"


def test_clean_tree_and_detached_head(git_repo):
    git(git_repo, "checkout", "-q", "--detach")
    info = capture_git(git_repo)
    assert (info.dirty, info.branch, info.diff, info.untracked) == (False, None, "", [])


def test_outside_git(tmp_path):
    assert capture_git(tmp_path).in_repo is False


def test_register_records_provenance_and_a_verifiable_hash(cli, git_repo, example_file, monkeypatch):
    (git_repo / "train.py").write_text("changed\n")
    (git_repo / "scratch.py").write_text("x = 1\n")
    monkeypatch.chdir(git_repo)
    result = cli("new", example_file, "--register", "--json")
    assert result.code == 0, result.err
    entry = json.loads(result.out)
    assert entry["status"] == "registered"
    assert entry["git"]["commit"] == git(git_repo, "rev-parse", "HEAD")
    assert entry["git"]["dirty"] is True and entry["git"]["untracked"] == ["scratch.py"]
    assert entry["git"]["diff_lines"] > 0
    assert entry["registration_verified"] is True
    seeds = entry["planned_seeds"]
    assert len(seeds) == 10 == len(set(seeds)) and all(0 <= s < 2**31 for s in seeds)
    # The hash is the SHA-256 of the canonical JSON of the stored registered content, which
    # holds what the file said and the provenance.
    con = sqlite3.connect(git_repo.parent / "lb" / "logbook.db")
    content_text, stored_hash, diff = con.execute(
        "SELECT registered_content, registration_hash, git_diff FROM hypothesis").fetchone()
    content = json.loads(content_text)
    assert stored_hash == entry["registration_hash"] == sha256_hex(canonical_json(content))
    assert content["min_effect"] == 0.01 and content["planned_seeds"] == seeds
    assert content["arms"][1] == {"name": "gated", "role": "candidate", "config": {"cell": "gated", "hidden": 64, "lr": 0.001}}
    assert content["git"]["diff_sha256"] == sha256_hex(diff)


def test_registration_outside_git_still_works(cli, example_file, tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    assert cli("new", example_file).code == 0
    assert cli("register", "extra").code == 0
    shown = cli("show", "1")
    assert "outside any git repository" in shown.out
    detail = json.loads(cli("show", "1", "--json").out)
    assert detail["git"]["in_repo"] is False and detail["registration_verified"] is True


def test_registered_entries_are_immutable_even_to_raw_sql(cli, example_file, db_path):
    cli("new", example_file, "--register")
    con = sqlite3.connect(db_path)
    for statement in (
        "UPDATE hypothesis SET registration_hash = 'x'",
        "UPDATE hypothesis SET git_commit = 'abc'",
        "UPDATE hypothesis SET registered_content = '{}'",
        "DELETE FROM hypothesis",
    ):
        with pytest.raises(sqlite3.IntegrityError):
            con.execute(statement)
    con.rollback()
    con.close()
    assert cli("register", "1").code == 2  # already registered


def test_amendments_are_dated_append_only_and_keep_the_registration(cli, example_file, db_path):
    cli("new", example_file, "--register")
    before = json.loads(cli("show", "1", "--json").out)
    result = cli("amend", "1", "--field", "min_effect", "--value", "0.02", "--reason", "pilot showed larger noise", "--json")
    assert result.code == 0, result.err
    amendment = json.loads(result.out)
    assert (amendment["field"], amendment["old"], amendment["new"]) == ("min_effect", 0.01, 0.02)
    assert amendment["at"].endswith("Z")
    assert cli("amend", "1", "--field", "seeds", "--value", "12", "--reason", "more power").code == 0
    assert cli("amend", "1", "--field", "arms.wide", "--value", "{cell: gated, hidden: 128, lr: 0.001}",
               "--reason", "a second variant").code == 0
    after = json.loads(cli("show", "1", "--json").out)
    assert after["min_effect"] == 0.02 and after["seeds"] == 12
    assert after["planned_seeds"][:10] == before["planned_seeds"] and len(set(after["planned_seeds"])) == 12
    assert [a["name"] for a in after["arms"]] == ["baseline", "gated", "wide"] and after["arms"][2]["added_by_amendment"]
    assert after["registration_hash"] == before["registration_hash"] and after["registration_verified"] is True
    assert [a["field"] for a in after["amendments"]] == ["min_effect", "seeds", "arms.wide"]
    con = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("DELETE FROM amendment")
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("UPDATE amendment SET reason = 'x'")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--field", "seeds", "--value", "8", "--reason", "r"], "--value: seeds: expected at least 10 (registered seeds cannot be dropped)"),
        (["--field", "goal", "--value", "maximize", "--reason", "r"], "--field: expected one of title, hypothesis, notes, tags, seeds, min_effect, alpha or arms.NAME, got 'goal'"),
        (["--field", "alpha", "--value", "0.9", "--reason", "r"], "--value: alpha: expected a number between 0 and 0.5 (exclusive), got 0.9"),
        (["--field", "arms.gated", "--value", "{}", "--reason", "r"], "--field: arm 'gated' exists and its runs used its config; expected a new arm name"),
        (["--field", "title", "--value", "New", "--reason", " "], "--reason: expected a non-empty reason for the amendment"),
    ],
)
def test_bad_amendments_are_refused_and_write_nothing(cli, example_file, db_path, args, message):
    cli("new", example_file, "--register")
    result = cli("amend", "1", *args)
    assert (result.code, result.err) == (2, message + "\n")
    assert sqlite3.connect(db_path).execute("SELECT count(*) FROM amendment").fetchone()[0] == 0


def test_drafts_cannot_be_amended(cli, example_file):
    cli("new", example_file)
    result = cli("amend", "1", "--field", "title", "--value", "x", "--reason", "r")
    assert result.code == 2 and "is a draft" in result.err


def test_entries_are_addressed_by_id_or_unique_slug_prefix(cli, example_file):
    cli("new", example_file)
    cli("new", example_file)
    assert json.loads(cli("show", "extra-output-gate-in-the-recurrent-cell-2", "--json").out)["id"] == 2
    assert json.loads(cli("show", "2", "--json").out)["slug"].endswith("-2")
    ambiguous = cli("show", "extra")
    assert ambiguous.code == 2 and "ambiguous" in ambiguous.err and ambiguous.err.count("\n") == 1
    missing = cli("show", "nothing")
    assert (missing.code, missing.err) == (2, "ENTRY: expected an entry id or slug prefix; nothing matches 'nothing'\n")


def test_json_shapes(cli, example_file):
    init = json.loads(cli("init", "--json").out)
    assert set(init) == {"db", "journal_mode", "schema_revision"}
    new = json.loads(cli("new", example_file, "--json").out)
    keys = {"id", "slug", "title", "hypothesis", "metric", "goal", "min_effect", "min_effect_source", "alpha", "seeds",
            "planned_seeds", "trainer", "baseline", "arms", "tags", "status", "registered_at", "registration_hash",
            "registration_verified", "git", "amendments", "runs"}
    assert keys <= set(new)
    assert new["status"] == "draft" and new["registration_hash"] is None and new["planned_seeds"] == []
    listed = json.loads(cli("list", "--json").out)
    assert list(listed) == ["entries"] and len(listed["entries"]) == 1
    assert {"id", "slug", "title", "metric", "goal", "status", "verdict", "arms", "seeds", "runs", "tags"} <= set(listed["entries"][0])
    registered = json.loads(cli("register", "1", "--json").out)
    assert registered["status"] == "registered" and len(registered["registration_hash"]) == 64


def test_environment_capture_does_not_import_torch():
    out = python_subprocess(
        "import sys, json; from logbook.entries.provenance import capture_environment; env = capture_environment();"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'python': env['python'], 'n': len(env['packages'])}))"
    )
    info = json.loads(out.stdout)
    assert info["torch"] is False and info["n"] > 10


def test_environment_reports_torch_in_a_process_that_imported_it():
    out = python_subprocess("import torch, json; from logbook.entries.provenance import capture_environment; print(json.dumps(capture_environment()['torch']))")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"].startswith("2.")


def test_cli_imports_neither_textual_nor_torch(tmp_path):
    code = (
        "import sys\nfrom logbook.cli import main\n"
        f"for verb in ('init', 'list'):\n"
        f"    try:\n        main(['--db', {str(tmp_path / 'x.db')!r}, verb, '--json'])\n"
        "    except SystemExit as e:\n        assert e.code == 0\n"
        "print(sorted(m for m in ('torch', 'textual') if m in sys.modules))"
    )
    out = python_subprocess(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("[]")


def test_python_dash_m_and_console_script_exit_codes(tmp_path, example_file):
    import sys

    env_db = str(tmp_path / "m.db")
    ok = subprocess.run([sys.executable, "-m", "logbook", "--db", env_db, "new", str(example_file)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "logbook", "--db", env_db, "show", "zzz"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    help_ = subprocess.run([sys.executable, "-m", "logbook"], capture_output=True, text=True)
    assert help_.returncode == 0 and "verdict" in help_.stdout and "audit-claim" in help_.stdout


def test_the_commit_read_from_the_git_folder_is_gits_in_every_layout(git_repo, tmp_path):
    """A branch as a loose ref, packed, in a worktree, a detached HEAD, no commit yet, no repository."""
    from logbook.entries.provenance import head_commit, read_head

    sub = git_repo / "sub"
    sub.mkdir()
    expected = git(git_repo, "rev-parse", "HEAD")
    assert read_head(sub) == head_commit(sub) == expected  # loose ref, from a folder below the root
    git(git_repo, "pack-refs", "--all", "--prune")
    assert read_head(git_repo) == head_commit(git_repo) == expected
    git(git_repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"))
    (tmp_path / "wt" / "new").write_text("x\n")
    git(tmp_path / "wt", "add", ".")
    git(tmp_path / "wt", "commit", "-q", "-m", "side")
    side = git(tmp_path / "wt", "rev-parse", "HEAD")
    assert side != expected and read_head(tmp_path / "wt") == head_commit(tmp_path / "wt") == side
    git(git_repo, "checkout", "-q", "--detach", expected)
    assert read_head(git_repo) == head_commit(git_repo) == expected
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    assert read_head(empty) is None and head_commit(empty) is None  # unborn branch: git says none too
    outside = tmp_path / "plain"
    outside.mkdir()
    assert head_commit(outside) is None  # no .git above it: known without asking git
