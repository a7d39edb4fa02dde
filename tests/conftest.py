"""Shared fixtures: a temporary logbook, the CLI called in-process through its real entry
point, and real git repositories in temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from logbook.cli import main

EXAMPLE_YAML = textwrap.dedent(
    """\
    title: Extra output gate in the recurrent cell
    hypothesis: An extra output gate lowers validation loss on the adding task
    metric: val_loss
    goal: minimize          # or maximize
    min_effect: 0.01        # δ in metric units; the word auto picks the labelled default rule
    alpha: 0.05             # optional, default 0.05
    seeds: 10               # per arm
    trainer: seq-gating     # a registered name, module:callable, or a command (below)
    arms:
      baseline: {cell: lstm, hidden: 64, lr: 0.001}
      gated: {cell: gated, hidden: 64, lr: 0.001}
    baseline: baseline      # optional: which arm is the baseline (default: the arm named baseline, else the first)
    tags: [rnn, negative-results]
    """
)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run `logbook ARGS...` in-process through logbook.cli.main, with the database in tmp_path
    unless --db is given; returns exit code, stdout and stderr."""
    monkeypatch.setenv("LOGBOOK_DB", str(tmp_path / "lb" / "logbook.db"))
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args: str) -> Result:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        code = exit_info.value.code
        return Result(0 if code is None else int(code), captured.out, captured.err)

    return run


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "lb" / "logbook.db"


@pytest.fixture
def example_file(tmp_path) -> Path:
    path = tmp_path / "gated.yaml"
    path.write_text(EXAMPLE_YAML, encoding="utf-8")
    return path


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def git_repo(tmp_path) -> Path:
    """A real repository with one commit: train.py and README."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('loss: 1.0')\n")
    (repo / "README").write_text("experiment\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def python_subprocess(code: str, **kwargs) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter of this environment."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, **kwargs)
