"""How long verifying one entry's hash chain takes as the entry grows, against the TUI's 2 s refresh.

Builds real logbooks (registration through the domain core, finished runs written and linked
the way the worker does, metric points in batches), then times ``verify_entry`` (cold) and the
entry view's check as the app makes it (``integrity_fields``), median of 3.

    .venv/bin/python benchmarks/verify.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._record import record  # noqa: E402
from logbook.db.engine import open_store  # noqa: E402
from logbook.entries.chain import entry_integrity, integrity_fields, link_finished_runs  # noqa: E402
from logbook.entries.file import validate  # noqa: E402
from logbook.entries.registry import create_draft, register  # noqa: E402
from logbook.entries.provenance import GitInfo  # noqa: E402


def build(folder: Path, seeds: int, points: int):
    store = open_store(folder / "logbook.db")
    spec = validate({"title": "bench", "hypothesis": "h", "metric": "score", "goal": "maximize", "min_effect": 0.1,
                     "seeds": seeds, "trainer": "seq-gating", "arms": {"baseline": {}, "cand": {"x": 1}}}, label="bench")
    entry = create_draft(store, spec)
    entry = register(store, str(entry.id), git=GitInfo(in_repo=False))
    with store.begin_write() as conn:
        arms = [r[0] for r in conn.exec_driver_sql("SELECT id FROM arm WHERE hypothesis_id = ?", (entry.id,))]
        run_ids = []
        for arm_id in arms:
            for seed in entry.planned_seeds:
                cur = conn.exec_driver_sql(
                    "INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, cancel_requested)"
                    " VALUES (?, ?, 'planned', 'running', 1, '2026-01-01', 0)", (arm_id, seed))
                run_id = cur.lastrowid
                conn.exec_driver_sql("INSERT INTO metric_point (run_id, name, step, value) VALUES (?, 'loss', ?, ?)",
                                     [(run_id, step, 1.0 / (step + 1)) for step in range(points)])
                conn.exec_driver_sql("UPDATE run SET status = 'succeeded', final_metrics = '{\"score\": 1.0}' WHERE id = ?",
                                     (run_id,))
                run_ids.append(run_id)
        link_finished_runs(conn, run_ids)
    return store, entry.id


def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = [(10, 100), (50, 1000), (200, 1000)] if not quick else [(10, 100), (50, 200)]
    rows = []
    for seeds, points in sizes:
        with tempfile.TemporaryDirectory() as folder:
            store, entry_id = build(Path(folder), seeds, points)
            assert entry_integrity(store, entry_id).integrity == "verified"
            full = timed(lambda: entry_integrity(store, entry_id))
            integrity_fields(store, entry_id)  # the app's first look fills the digest cache
            view = timed(lambda: integrity_fields(store, entry_id))
            rows.append([f"{2 * seeds}", f"{2 * seeds * points:,}", f"{2 * seeds + 1}", f"{full * 1000:.0f}",
                         f"{view * 1000:.0f}", f"{full / view:.1f}×"])
            store.dispose()
    record("verify", "Verifying one entry's hash chain", ["runs", "metric points", "links",
                                                          "full verify (ms)", "view check, cached digests (ms)", "ratio"], rows,
           ["Full (`logbook verify`, and the check before run/requeue/audit): every link hash, the live state,",
            "each run row and a SHA-256 over all metric points. View (show, verdict, the app's entry screen,",
            "which checks twice per 2 s refresh): the same, but a run's points digest is reused while an",
            "aggregate fingerprint of its points (count, max id, sums) is unchanged. Medians of 3."])


if __name__ == "__main__":
    main()
