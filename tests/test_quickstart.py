"""The README's quick start runs as written, line by line, from an empty folder."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def quickstart_lines() -> list[str]:
    section = README.read_text().split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_quick_start_runs_as_written(tmp_path):
    lines = quickstart_lines()
    assert any(line.startswith("logbook run") for line in lines)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
    env.pop("LOGBOOK_DB", None)
    env.update({"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})
    outputs = {}
    try:
        for line in lines:
            run = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=900, stdin=subprocess.DEVNULL)
            assert run.returncode == 0, f"{line}\n{run.stdout}\n{run.stderr}"
            outputs[line.split("#")[0].strip()] = run.stdout
    finally:
        db = tmp_path / ".logbook" / "logbook.db"
        if db.exists():  # the detached worker would exit by itself when idle; do not leave it to the next test
            con = sqlite3.connect(db)
            for (pid,) in con.execute("SELECT pid FROM worker WHERE status = 'running'"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            con.close()
    verdict = outputs["logbook verdict extra-output"]
    assert re.search(r"(POSITIVE|NEGATIVE|INCONCLUSIVE)\s+gated vs baseline", verdict)
    wait = outputs["logbook run extra-output --wait"]
    assert "20/20 ended" in wait  # without a terminal, one line per run and a summary
    assert (tmp_path / "writeup" / "figures").is_dir() and list((tmp_path / "writeup").glob("*.md"))
