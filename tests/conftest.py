"""Shared fixtures: a temporary logbook, the CLI called in-process through its real entry
point, and real git repositories in temporary folders."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

import logbook.entries.chain
import logbook.entries.registry
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

# The same entry as EXAMPLE_YAML, written in TOML.
TOML_EXAMPLE = textwrap.dedent(
    """\
    title = "Extra output gate in the recurrent cell"
    hypothesis = "An extra output gate lowers validation loss on the adding task"
    metric = "val_loss"
    goal = "minimize"
    min_effect = 0.01
    seeds = 10
    trainer = "seq-gating"
    tags = ["rnn", "negative-results"]

    [arms.baseline]
    cell = "lstm"
    hidden = 64
    lr = 0.001

    [arms.gated]
    cell = "gated"
    hidden = 64
    lr = 0.001
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


FIXTURES = Path(__file__).parent / "fixtures"


def as_from_a_terminal() -> None:
    """``preexec_fn`` for a process standing in for one started from a terminal: SIGHUP at its
    default (a test run under ``nohup`` would otherwise hand its children an ignored SIGHUP)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def wait_for(predicate, timeout=60.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


CONFIRMING_VERBS = {"run", "requeue", "audit", "rerun"}


class Project:
    """A git repository holding fake trainers, with its own logbook database.

    ``logbook(...)`` runs the real CLI in a subprocess with no terminal on stdin. Like a script, it
    confirms the commands that run/requeue/audit/rerun show (``--yes``) unless ``confirm=False``:
    tests/test_record.py tests the confirmation itself.
    """

    def __init__(self, root: Path):
        self.root = root
        self.db = root / ".logbook" / "logbook.db"
        self.workers: list[subprocess.Popen] = []

    def logbook(self, *args, check=True, env=None, confirm=True, **kwargs) -> subprocess.CompletedProcess:
        args = tuple(map(str, args))
        if confirm and args and args[0] in CONFIRMING_VERBS and "--status" not in args and "--compare" not in args:
            args = (*args, "--yes")
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        out = subprocess.run(
            [sys.executable, "-m", "logbook", "--db", str(self.db), *args], cwd=self.root,
            capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})}, **kwargs,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"logbook {args} exited {out.returncode}: {out.stderr}")
        return out

    def entry(self, name: str, trainer, arms: dict, seeds: int = 5, metric: str = "score", extra: str = "") -> str:
        arms_yaml = "\n".join(f"  {arm}: {json.dumps(cfg)}" for arm, cfg in arms.items())
        trainer_yaml = trainer if isinstance(trainer, str) else "\n" + textwrap.indent(trainer_yaml_block(trainer), "  ")
        (self.root / f"{name}.yaml").write_text(
            f"title: {name}\nhypothesis: test\nmetric: {metric}\ngoal: maximize\nmin_effect: 0.1\nseeds: {seeds}\n"
            f"trainer: {trainer_yaml}\narms:\n{arms_yaml}\n{extra}"
        )
        out = self.logbook("new", f"{name}.yaml", "--register", "--json")
        return json.loads(out.stdout)["slug"]

    def start_worker(self, *args, env=None) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "logbook", "--db", str(self.db), "worker", *map(str, args)], cwd=self.root,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})},
        )
        self.workers.append(proc)
        return proc

    def runs(self) -> list[dict]:
        con = sqlite3.connect(self.db)
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute(
            "SELECT run.*, arm.name AS arm FROM run JOIN arm ON arm.id = run.arm_id ORDER BY run.id")]
        con.close()
        for row in rows:
            row["final_metrics"] = json.loads(row["final_metrics"]) if row["final_metrics"] else None
        return rows

    def points(self, run_id: int) -> list[tuple]:
        con = sqlite3.connect(self.db)
        rows = con.execute("SELECT name, step, value FROM metric_point WHERE run_id = ? ORDER BY name, step", (run_id,)).fetchall()
        con.close()
        return rows


def trainer_yaml_block(spec: dict) -> str:
    return "\n".join(f"{k}: {json.dumps(v)}" for k, v in spec.items())


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    shutil.copy(FIXTURES / "fakes.py", root / "fakes.py")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "fakes")
    proj = Project(root)
    yield proj
    for proc in proj.workers:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proj.db.exists():  # detached workers started by `logbook run` in a test
        con = sqlite3.connect(proj.db)
        for (pid,) in con.execute("SELECT pid FROM worker WHERE status = 'running'"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        con.close()


FIXED_ENV = {"python": "3.11.7", "platform": "Linux-x86_64", "host": "lab-gpu-1", "packages": {"numpy": "2.0.0", "torch": "2.13.0"}}


@pytest.fixture
def fixed_registration(monkeypatch, tmp_path):
    """Registration with fixed seeds, time and environment, outside git, so exports are stable."""
    counter = iter(range(10_000))
    monkeypatch.setattr(logbook.entries.registry, "draw_seeds", lambda n, exclude=(): [101 + next(counter) for _ in range(n)])
    monkeypatch.setattr(logbook.entries.registry, "capture_environment", lambda **_: dict(FIXED_ENV))
    monkeypatch.setattr(logbook.entries.registry, "utcnow", lambda: datetime(2026, 5, 4, 3, 2, 1, tzinfo=timezone.utc))
    monkeypatch.setattr(logbook.entries.chain, "utcnow", lambda: datetime(2026, 5, 4, 3, 2, 1, tzinfo=timezone.utc))
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)


def make_entry(cli, tmp_path, title="Extra output gate in the recurrent cell", tags="[rnn, negative-results]") -> None:
    path = tmp_path / "entry.yaml"
    path.write_text(textwrap.dedent(f"""\
        title: {json.dumps(title)}
        hypothesis: An extra output gate lowers validation loss on the adding task
        metric: val_loss
        goal: minimize
        min_effect: 0.01
        seeds: 6
        trainer: seq-gating
        arms:
          baseline: {{cell: lstm}}
          gated: {{cell: gated}}
        tags: {tags}
        """))
    assert cli("new", path, "--register").code == 0


def add_runs(db: Path, arm: str, values: list[float | None], statuses: list[str] | None = None,
             at: tuple[str | None, str] = (None, "2026-05-04")) -> None:
    """Finished planned runs of ARM with these values, linked into the entry's chain; ``at`` is
    their (started, ended) time."""
    con = sqlite3.connect(db)
    arm_id, seeds = con.execute(
        "SELECT arm.id, hypothesis.planned_seeds FROM arm JOIN hypothesis ON hypothesis.id = arm.hypothesis_id WHERE arm.name = ?",
        (arm,)).fetchone()
    run_ids = []
    for i, (seed, value) in enumerate(zip(json.loads(seeds), values)):
        status = (statuses or ["succeeded"] * len(values))[i]
        metrics = None if value is None else json.dumps({"val_loss": value})
        # as a worker does it: points while the run runs, then the finished row (finished runs are immutable)
        cur = con.execute(
            "INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, started_at, final_metrics, wall_time_s,"
            " git_commit, cancel_requested) VALUES (?, ?, 'planned', 'running', 1, '2026-05-04', ?, ?, ?, 'abc123', 0)",
            (arm_id, seed, at[0], metrics, 12.5 + i))
        for step in range(3):
            con.execute("INSERT INTO metric_point (run_id, name, step, value) VALUES (?, 'loss', ?, ?)",
                        (cur.lastrowid, step, 1.0 / (step + 1) + (value or 0) / 10))
        con.execute("UPDATE run SET status = ?, ended_at = ? WHERE id = ?", (status, at[1], cur.lastrowid))
        run_ids.append(cur.lastrowid)
    con.commit()
    con.close()
    link_runs(db, run_ids)


def link_runs(db: Path, run_ids: list[int]) -> None:
    """Add finished runs written with sqlite3 to their entry's hash chain, as the worker does."""
    from logbook.db.engine import open_store
    from logbook.entries.chain import link_finished_runs

    store = open_store(db)
    try:
        with store.begin_write() as conn:
            link_finished_runs(conn, run_ids)
    finally:
        store.dispose()
