"""The demo's printed next steps work when pasted: each names the demo's own logbook with --db,
quoted for the shell (the test puts the demo under a folder with a space in its name)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys


def test_every_printed_next_step_runs(tmp_path):
    db = tmp_path / "my demo" / "demo.db"
    env = {k: v for k, v in os.environ.items() if k != "LOGBOOK_DB"}
    out = subprocess.run([sys.executable, "-m", "logbook", "demo", "--no-tui", "--tiny", "--demo-db", str(db)],
                         capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    steps = [line.strip() for line in out.stdout.split("Next steps")[1].splitlines() if line.startswith("  logbook ")]
    assert len(steps) == 7
    elsewhere = tmp_path / "elsewhere"  # not where the demo ran: only --db can find its logbook
    elsewhere.mkdir()
    for step in steps:
        words = shlex.split(step)
        assert words[:3] == ["logbook", "--db", str(db)], step
        done = subprocess.run([sys.executable, "-m", *words], cwd=elsewhere, capture_output=True, text=True, timeout=120,
                              env=env, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, (step, done.stderr)
        assert "no logbook at" not in done.stderr
    shown = subprocess.run([sys.executable, "-m", *shlex.split(steps[1])], cwd=elsewhere, capture_output=True, text=True,
                           env=env, stdin=subprocess.DEVNULL)
    assert "Extra output gate" in shown.stdout
    assert (tmp_path / "my demo" / "demo-export").is_dir()
    # without --db the same command looks for another logbook and finds none
    bare = subprocess.run([sys.executable, "-m", "logbook", *shlex.split(steps[1])[3:]], cwd=elsewhere,
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert bare.returncode == 2 and "no logbook at" in bare.stderr
