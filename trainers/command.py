"""The command trainer: run an existing training script unchanged.

The entry's ``trainer.command`` is split into arguments like a shell would (``shlex``), and then
``{seed}``, ``{run_dir}``, the run's stream seeds (``{seed_init}``, ``{seed_data}``,
``{seed_noise}``, ``{seed_split}``) and the arm's config keys are substituted *inside each
argument*, so a value with spaces or quotes stays one argument and no shell ever sees user text.
A script that takes its randomness from the stream seeds can take part in a variance study (one
stream varied, the others fixed). The script also gets ``LOGBOOK_SEED``, ``LOGBOOK_SEED_INIT``
(and ``_DATA``, ``_NOISE``, ``_SPLIT``), ``LOGBOOK_RUN_DIR``, ``LOGBOOK_CONFIG`` (the config as JSON) and
``LOGBOOK_METRICS`` (a file where it may write JSON lines).

Metrics come from two places, both optional:
- each regular expression in ``trainer.metrics`` is matched against every line of the script's
  stdout and stderr; every match is a point (step = match count), the last one is final;
- JSON lines in ``$LOGBOOK_METRICS``: ``{"step": 3, "loss": 0.5, ...}`` (any number of metrics
  per line) or ``{"name": "loss", "value": 0.5, "step": 3}``; the last value of each is final.

A non-zero exit fails the run. Its output goes to the run's log (this process's stdout).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from trainers.protocol import SOURCES, RunContext


def build_argv(command: str, seed: int, run_dir: Path, config: dict[str, Any],
               streams: dict[str, int] | None = None) -> list[str]:
    """The command's argument list with placeholders filled in, one argument per shell word."""
    values = {**{k: _as_text(v) for k, v in config.items()}, "seed": str(seed), "run_dir": str(run_dir),
              # without streams (a preview of the command) the stream placeholders are shown as written
              **{f"seed_{name}": "{seed_" + name + "}" for name in SOURCES},
              **{f"seed_{name}": str(value) for name, value in (streams or {}).items()}}
    return [word.format_map(values) for word in shlex.split(command)]


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_json_metrics(path: Path) -> list[tuple[int | None, str, float]]:
    """(step, name, value) triples from a JSON-lines metrics file; malformed lines are skipped."""
    points: list[tuple[int | None, str, float]] = []
    if not path.exists():
        return points
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        step = record.get("step")
        step = int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None
        if "name" in record and "value" in record:
            items = [(record["name"], record["value"])]
        else:
            items = [(k, v) for k, v in record.items() if k != "step"]
        for name, value in items:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                points.append((step, str(name), float(value)))
            elif isinstance(value, str) and value.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
                points.append((step, str(name), float(value)))
    return points


def run_command(config: dict[str, Any], ctx: RunContext) -> None:
    """Run the entry's command for this seed and report what it printed or wrote."""
    options = ctx.options
    patterns = {name: re.compile(p) for name, p in (options.get("metrics") or {}).items()}
    metrics_file = ctx.run_dir / "command-metrics.jsonl"
    argv = build_argv(options["command"], ctx.seed, ctx.run_dir, config, ctx.streams)
    env = {
        **os.environ,
        "LOGBOOK_SEED": str(ctx.seed),
        **{f"LOGBOOK_SEED_{name.upper()}": str(value) for name, value in ctx.streams.items()},
        "LOGBOOK_RUN_DIR": str(ctx.run_dir),
        "LOGBOOK_CONFIG": json.dumps(config, sort_keys=True),
        "LOGBOOK_METRICS": str(metrics_file),
    }
    counts = {name: 0 for name in patterns}
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            text=True, errors="replace", bufsize=1,
        )
    except FileNotFoundError as exc:
        raise RuntimeError(f"command not found: {argv[0]}") from exc

    def stop(signum, _frame):  # noqa: ANN001 (a cancel or timeout reaches the script too)
        proc.send_signal(signum)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        for name, pattern in patterns.items():
            for match in pattern.finditer(line):
                value = _number(match.group(1))
                if value is not None:
                    counts[name] += 1
                    ctx.log(counts[name], **{name: value})
                    ctx.final(**{name: value})
    sys.stdout.flush()
    code = proc.wait()
    last: dict[str, float] = {}
    for step, name, value in read_json_metrics(metrics_file):
        ctx.log(step if step is not None else 0, **{name: value})
        last[name] = value
    if last:
        ctx.final(**last)
    if code != 0:
        raise RuntimeError(f"command exited with status {code}: {shlex.join(argv)}")
