"""`logbook demo`: wall time with and without its variance-study entry, on this machine.

The demo registers the gated-RNN entry (two arms of ten seeds) and, beside it, an entry with a
pre-registered variance study (logbook/data/demo-variance.yaml). The study must not make a new
user wait longer than the demo without it. Each round runs `logbook demo --no-tui` in a fresh
process on a fresh database, once with the study (the demo as shipped) and once with the hidden
``--without-study`` (the old path), alternating which goes first, and reports wall time, the
CPU time of the demo and its worker and run processes (children included), and the load
average before each run: on a shared machine wall time moves with the load, CPU much less.

Run: .venv/bin/python benchmarks/demo.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _record import record  # noqa: E402

PATHS = {"with the variance study (shipped)": [], "without it (old path)": ["--without-study"]}


def run_demo(flags: list[str], folder: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (children) and the 1-minute load average before, for one demo."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "logbook", "demo", "--no-tui", "--demo-db", str(folder / "demo.db"), *flags],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd=folder)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in PATHS}
    order = list(PATHS)
    for i in range(args.rounds):
        for name in order if i % 2 == 0 else order[::-1]:
            with tempfile.TemporaryDirectory() as folder:
                times[name].append(run_demo(PATHS[name], Path(folder)))
                print(f"round {i + 1}: {name}: {times[name][-1][0]:.1f} s wall", file=sys.stderr)
    old = statistics.median(t[0] for t in times["without it (old path)"])
    rows = []
    for name, samples in times.items():
        wall = statistics.median(t[0] for t in samples)
        rows.append([f"`logbook demo --no-tui`, {name}", ", ".join(f"{t[0]:.0f}" for t in samples), f"{wall:.0f}",
                     f"{statistics.median(t[1] for t in samples):.0f}", ", ".join(f"{t[2]:.1f}" for t in samples),
                     f"{wall / old:.2f}"])
    record("demo", "The demo's wall time with and without its variance-study entry",
           ["demo", "wall per round (s)", "median wall (s)", "median CPU (s)", "load before each", "wall / old"], rows,
           ["Each round runs both, in a fresh process on a fresh database, alternating which goes first.",
            "CPU is user + system time of the demo, its worker and every run process (they are its children).",
            "Load is the 1-minute load average just before the run: other work on the machine shares its cores."])


if __name__ == "__main__":
    main()
