"""Terminal-app speed on a large logbook: time to first paint and to apply a filter keystroke.

Builds (with bulk inserts) a logbook of 10,000 entries, 200,000 runs and, by default, 20 million
metric points, then starts the real app headless at 120×40 and measures:
- first paint: from constructing the app (opening the database included) until the logbook table
  shows its first rows;
- a filter keystroke: from typing one character in the `/` filter until the table shows the result;
and records the query plans of the logbook screen's queries (they must use indexes).
Goal: first paint ≤ 1.0 s, a filter keystroke ≤ 50 ms.

``--run-screen-points N`` measures only the run screen's read (``tui.data.run_view``, which its timer
repeats every 2 s while the run runs) of one run with N points and a long log, against the previous
read (every point through the ORM, the whole log read for its last lines), alternated; results in
``tui_run_screen.md``.

Run: .venv/bin/python benchmarks/tui.py [--entries 10000] [--runs-per-arm 10] [--points-per-run 100]
     .venv/bin/python benchmarks/tui.py --run-screen-points 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import record  # noqa: E402

from logbook.db.engine import open_store  # noqa: E402

WORDS = "gate attention dropout schedule warmup norm residual mixup label smoothing depth width ema".split()


def build(db: Path, entries: int, runs_per_arm: int, points_per_run: int, log_path: str | None = None) -> dict[str, float]:
    open_store(db).dispose()
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous = OFF")
    rng = random.Random(0)
    started = time.perf_counter()
    now = "2026-11-22 12:00:00.000000"
    con.executemany(
        "INSERT INTO hypothesis (id, slug, title, statement, metric, goal, alpha, seeds_per_arm, planned_seeds, trainer,"
        " baseline_arm, deterministic, tags, notes, status, verdict, verdict_detail, source_text, created_at, updated_at)"
        " VALUES (?, ?, ?, 'h', 'val_loss', 'minimize', 0.05, ?, '[]', '{\"name\": \"seq-gating\"}', 'baseline', 0, ?, '',"
        " 'concluded', ?, ?, '', ?, ?)",
        [(i, f"entry-{i}", f"{rng.choice(WORDS)} {rng.choice(WORDS)} variant {i}", runs_per_arm,
          json.dumps([rng.choice(WORDS)]), v, json.dumps({"comparisons": [{"effect": rng.gauss(0, 0.01), "ci_low": -0.02, "ci_high": 0.02}]}),
          now, now)
         for i in range(1, entries + 1) for v in [rng.choice(["positive", "negative", "inconclusive"])]])
    con.executemany("INSERT INTO arm (id, hypothesis_id, name, role, position, trainer, config, config_hash, created_at, added_by_amendment)"
                    " VALUES (?, ?, ?, ?, ?, '{}', '{}', 'x', ?, 0)",
                    [(2 * i + k - 1, i, name, role, k, now) for i in range(1, entries + 1)
                     for k, (name, role) in enumerate((("baseline", "baseline"), ("gated", "candidate")))])
    run_rows = [(arm, seed, now, now, json.dumps({"val_loss": rng.random()}), log_path) for arm in range(1, 2 * entries + 1)
                for seed in range(runs_per_arm)]
    con.executemany("INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, ended_at, final_metrics, log_path,"
                    " cancel_requested) VALUES (?, ?, 'planned', 'running', 1, ?, ?, ?, ?, 0)", run_rows)  # finished once their points are in
    con.commit()
    n_runs = len(run_rows)
    batch = 1_000_000
    total = n_runs * points_per_run
    for start in range(0, total, batch):
        con.executemany("INSERT INTO metric_point (run_id, name, step, value) VALUES (?, 'loss', ?, ?)",
                        ((1 + (j // points_per_run), j % points_per_run, 1.0 / (1 + j % points_per_run))
                         for j in range(start, min(total, start + batch))))
        con.commit()
    con.execute("UPDATE run SET status = 'succeeded'")  # a finished run's points are immutable: they went in first
    con.commit()
    con.close()
    return {"runs": n_runs, "points": total, "build_s": time.perf_counter() - started}


def query_plans(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    plans = []
    for sql in ("SELECT arm.hypothesis_id, sum(CASE WHEN run.status IN ('succeeded', 'failed') AND run.seed_origin IN"
                " ('planned', 'extra') AND run.id NOT IN (SELECT retry_of FROM run WHERE retry_of IS NOT NULL) THEN 1 ELSE 0 END),"
                " sum(CASE WHEN run.status IN ('queued', 'running') THEN 1 ELSE 0 END), max(run.ended_at)"
                " FROM arm JOIN run ON run.arm_id = arm.id GROUP BY arm.hypothesis_id",
                "SELECT name, step, value FROM metric_point WHERE run_id = 5 ORDER BY name, step"):
        plans.append("; ".join(row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql)))
    con.close()
    return plans


def send_key(app, key: str) -> None:  # noqa: ANN001
    """Deliver one key to the app as the terminal driver would, without waiting for anything."""
    from textual import events

    event = events.Key(key, key if len(key) == 1 else None)
    event.set_sender(app)
    app._driver.send_message(event)


async def painted(app) -> float:  # noqa: ANN001
    """The time at which the screen has been refreshed after every message already queued."""
    done = asyncio.get_running_loop().create_future()
    app.call_after_refresh(lambda: done.done() or done.set_result(time.perf_counter()))
    return await done


async def until(condition, timeout: float = 30.0) -> None:  # noqa: ANN001
    """Yield to the app's event loop until ``condition()`` holds."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the app never got there")
        await asyncio.sleep(0.0005)


async def measure(db: Path, keystrokes: int, refresh_s: float) -> tuple[float, list[float], list[float], list[float]]:
    """First paint; then keys typed into the filter, each timed from its delivery until the input
    shows it and the screen is repainted (not Pilot's own settling, which waits for idle in 20 ms
    steps); the filtered result after each word; `s` until the table is sorted and repainted."""
    from textual.widgets import Input

    from logbook.tui.app import LogbookApp

    started = time.perf_counter()
    app = LogbookApp(db, refresh_s=refresh_s)
    async with app.run_test(size=(120, 40)) as pilot:
        while True:
            tables = app.screen.query("#entries")
            if tables and tables.first().row_count:
                break
            await asyncio.sleep(0.005)
        first_paint = time.perf_counter() - started
        await until(lambda: app.screen.loaded)  # every row read: what typing filters
        await pilot.press("slash")
        screen, table, box = app.screen, tables.first(), app.screen.query_one("#filter", Input)
        keys: list[float] = []
        results: list[float] = []
        for word in ("gate", "norm", "depth")[: max(1, keystrokes // 8)]:
            for typed in (list(word), ["backspace"] * len(word)):  # the word, a pause, then deleting it, a pause
                for key in typed:
                    expected = box.value + key if key != "backspace" else box.value[:-1]
                    start = time.perf_counter()
                    send_key(app, key)
                    await until(lambda: box.value == expected)
                    keys.append(await painted(app) - start)
                    await asyncio.sleep(0.08)  # a fast typist's pace, under the debounce
                start = time.perf_counter()
                await until(screen.filter_settled)  # typing paused: debounce, filter in a worker, repaint
                results.append(await painted(app) - start)
        assert table.row_count
        await pilot.press("escape")
        sorts: list[float] = []
        for _ in range(8):  # `s`: the next sort column, until the table shows it
            generation = screen.generation
            start = time.perf_counter()
            send_key(app, "s")
            await until(lambda: screen.generation != generation and screen.filter_settled())
            sorts.append(await painted(app) - start)
    return first_paint, keys, results, sorts


def old_entry_rows(store) -> list[dict]:  # noqa: ANN001
    """The list's rows as the app read them before entries/listing.py (its query and per-row work),
    kept here so old and new are timed side by side in one run."""
    import math

    from sqlalchemy import case, func
    from sqlmodel import col, select

    from logbook.db.models import Arm, Hypothesis, Run
    from logbook.db.queries import iso, latest_attempt
    from logbook.db.runstatus import ACTIVE, COUNTED_ORIGINS, FINISHED

    counted = (col(Run.status).in_(FINISHED)) & (col(Run.seed_origin).in_(COUNTED_ORIGINS)) & latest_attempt()
    with store.session() as session:
        entries = session.exec(select(
            Hypothesis.id, Hypothesis.slug, Hypothesis.title, Hypothesis.metric, Hypothesis.goal, Hypothesis.seeds_per_arm,
            Hypothesis.verdict, Hypothesis.verdict_detail, Hypothesis.status, Hypothesis.tags, Hypothesis.updated_at,
            Hypothesis.retrospective).order_by(Hypothesis.id)).all()
        arm_counts = dict(session.exec(select(Arm.hypothesis_id, func.count()).group_by(Arm.hypothesis_id)).all())
        per_entry = {entry_id: (finished or 0, active or 0, last) for entry_id, finished, active, last in session.exec(
            select(Arm.hypothesis_id, func.sum(case((counted, 1), else_=0)),
                   func.sum(case((col(Run.status).in_(ACTIVE), 1), else_=0)), func.max(Run.ended_at))
            .join(Run, Run.arm_id == Arm.id).group_by(Arm.hypothesis_id)).all()}
    finite = lambda v: v if isinstance(v, (int, float)) and math.isfinite(v) else -math.inf  # noqa: E731
    rows = []
    for e in entries:
        best = max((e.verdict_detail or {}).get("comparisons") or [], key=lambda c: finite(c.get("effect")), default=None)
        finished, active, last_run = per_entry.get(e.id, (0, 0, None))
        arms = arm_counts.get(e.id, 0)
        rows.append({"id": e.id, "slug": e.slug, "title": e.title, "metric": e.metric, "goal": e.goal, "arms": arms,
                     "done": finished, "planned": arms * e.seeds_per_arm, "active": active,
                     "effect": None if best is None else best.get("effect"), "verdict": e.verdict or "pending",
                     "status": e.status, "tags": list(e.tags or []),
                     "last_activity": max(filter(None, (iso(e.updated_at), iso(last_run))), default=None),
                     "haystack": f"{e.title} {e.slug} {e.metric}".lower()})
    return rows


def list_rows_side_by_side(db: Path, repeats: int = 5) -> dict[str, list[float]]:
    """Seconds to read the list's rows: the old path and entries.listing.entry_rows, alternated."""
    from logbook.entries.listing import entry_rows

    store = open_store(db, mode="read")
    times: dict[str, list[float]] = {"old": [], "new": []}
    try:
        for _ in range(repeats):
            for name, read in (("old", old_entry_rows), ("new", entry_rows)):
                start = time.perf_counter()
                read(store)
                times[name].append(time.perf_counter() - start)
    finally:
        store.dispose()
    return times


def cli_times(db: Path) -> dict[str, list[float]]:
    """Wall time of `logbook list` and `logbook status` (a fresh process each, as typed)."""
    import subprocess

    times: dict[str, list[float]] = {"list": [], "status": []}
    for _ in range(3):
        for verb in times:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "logbook", "--db", str(db), verb], capture_output=True, check=True)
            times[verb].append(time.perf_counter() - start)
    return times


def old_run_read(store, run_id: int, log_path: Path) -> None:  # noqa: ANN001
    """The run screen's previous read of points and log: SQLModel rows, the whole log split."""
    import math
    from collections import defaultdict

    from sqlmodel import select

    from logbook.db.models import MetricPoint

    with store.session() as session:
        points = session.exec(select(MetricPoint.name, MetricPoint.step, MetricPoint.value)
                              .where(MetricPoint.run_id == run_id).order_by(MetricPoint.name, MetricPoint.step)).all()
    curves: dict[str, list[float]] = defaultdict(list)
    for name, _, value in points:
        curves[name].append(math.nan if value is None else value)
    "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])


def run_screen_side_by_side(points: int, repeats: int = 7) -> None:
    """Seconds for the run screen's read of one run with ``points`` points and a 50 MB log."""
    from logbook.tui.data import run_view

    with tempfile.TemporaryDirectory() as tmp:
        db, log = Path(tmp) / "run.db", Path(tmp) / "log.txt"
        with open(log, "w", encoding="utf-8") as handle:
            for i in range(500_000):
                handle.write(f"step {i:>9} loss {1.0 / (1 + i):.6f} lr 0.003 throughput 1234.5 samples/s\n")
        build(db, 1, 1, points, log_path=str(log))
        store = open_store(db, mode="read")
        times: dict[str, list[float]] = {"old": [], "new": []}
        try:
            for _ in range(repeats):
                for name, read in (("old", lambda: old_run_read(store, 1, log)), ("new", lambda: run_view(store, 1))):
                    start = time.perf_counter()
                    read()
                    times[name].append(time.perf_counter() - start)
        finally:
            store.dispose()
        size_mb = log.stat().st_size / 1e6
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    record("tui_run_screen", "The run screen's read of a long run",
           ["read", "median", "min", "max"],
           [[f"previous: points through the ORM, whole log ({points:,} points, {size_mb:.0f} MB log)", f"{old * 1000:.0f} ms",
             f"{min(times['old']) * 1000:.0f} ms", f"{max(times['old']) * 1000:.0f} ms"],
            ["run_view: points through the driver, the log's last 64 KiB (and the run, entry and audits)",
             f"{new * 1000:.0f} ms", f"{min(times['new']) * 1000:.0f} ms", f"{max(times['new']) * 1000:.0f} ms"],
            ["new / old", f"{new / old:.2f}", "", ""]],
           [f"{repeats} reads each, alternated. The screen's timer repeats this read every 2 s while the run is queued "
            "or running (after it ends, only after a commit).",
            f"Machine load (1-minute average) after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.",
            "Command: .venv/bin/python benchmarks/tui.py " + " ".join(sys.argv[1:])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs-per-arm", type=int, default=10)
    parser.add_argument("--points-per-run", type=int, default=100)
    parser.add_argument("--run-screen-points", type=int, default=0, help="measure only the run screen's read")
    args = parser.parse_args()
    if args.run_screen_points:
        run_screen_side_by_side(args.run_screen_points)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "big.db"
        built = build(db, args.entries, args.runs_per_arm, args.points_per_run)
        size_mb = db.stat().st_size / 1e6
        plans = query_plans(db)
        paints, keys, results, sorts, ticking = [], [], [], [], []
        load_before = os.getloadavg()
        for _ in range(3):
            paint, key_times, result_times, sort_times = asyncio.run(measure(db, 24, refresh_s=3600))
            paints.append(paint)
            keys += key_times
            results += result_times
            sorts += sort_times
            ticking += asyncio.run(measure(db, 24, refresh_s=2.0))[1]  # the app's own 2 s re-read timer running
        cli = cli_times(db)
        side = list_rows_side_by_side(db)
    p90 = lambda xs: sorted(xs)[int(0.9 * len(xs))]  # noqa: E731
    rows = [
        ["logbook size", f"{args.entries:,} entries, {built['runs']:,} runs, {built['points']:,} metric points",
         f"{size_mb:,.0f} MB", f"built in {built['build_s']:.0f} s"],
        ["time to first paint (open database, load rows, show table)", "3 starts", f"median {statistics.median(paints):.2f} s",
         f"max {max(paints):.2f} s (goal ≤ 1.0 s)"],
        ["filter keystroke handled and echoed (the UI thread never filters)", f"{len(keys)} keystrokes",
         f"median {statistics.median(keys) * 1000:.0f} ms", f"p90 {p90(keys) * 1000:.0f} ms (goal ≤ 50 ms)"],
        ["the same, with the app's 2 s re-read timer running (the logbook unchanged)", f"{len(ticking)} keystrokes",
         f"median {statistics.median(ticking) * 1000:.0f} ms", f"p90 {p90(ticking) * 1000:.0f} ms (goal ≤ 50 ms)"],
        ["typing pauses → filtered table shown (debounce + worker + repaint)", f"{len(results)} pauses",
         f"median {statistics.median(results) * 1000:.0f} ms", f"p90 {p90(results) * 1000:.0f} ms (debounce 120 ms)"],
        ["sort key `s` → table sorted and repainted (worker sorts, header re-labelled)", f"{len(sorts)} presses",
         f"median {statistics.median(sorts) * 1000:.0f} ms", f"p90 {p90(sorts) * 1000:.0f} ms (goal ≤ 50 ms)"],
        ["list rows read (worker): old query vs entries/listing.py, alternated", f"{len(side['new'])} reads each",
         f"old median {statistics.median(side['old']) * 1000:.0f} ms, new {statistics.median(side['new']) * 1000:.0f} ms",
         f"new/old {statistics.median(side['new']) / statistics.median(side['old']):.2f} (the new rows also carry the "
         "hypothesis, notes, arm names and trainer the filter searches)"],
        *[[f"`logbook {verb}` (new process, 10k entries)", "3 runs", f"median {statistics.median(t) * 1000:.0f} ms",
           f"max {max(t) * 1000:.0f} ms (goal ≤ 300 ms)"] for verb, t in cli.items()],
    ]
    record("tui", "Terminal app and CLI on a large logbook", ["measure", "sample", "result", "detail"], rows,
           ["Query plans: " + " | ".join(plans), "Headless (Textual run_test) at 120×40. Keys are delivered to the app "
            "as the terminal driver delivers them and timed until the screen is repainted after handling them "
            "(`call_after_refresh`), one every 80 ms; Pilot's `press` is not timed (it waits for the app to go idle in "
            "20 ms steps: about 64 ms a key on an empty app). First paint: from constructing the app until the table "
            "shows rows (the first page is read before the rest).",
            "Machine load (1-minute average) before and after the app runs: "
            f"{load_before[0]:.1f} and {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.",
            "Command: .venv/bin/python benchmarks/tui.py " + " ".join(sys.argv[1:])])


if __name__ == "__main__":
    main()
