"""Watching runs until they end: what changed since the last look, and where the whole stands.

`run --wait`, `audit --wait` and `rerun --wait` show this as a progress bar on a terminal and as
one line per event (plus a periodic summary) anywhere else: nohup, CI, `| tee`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from logbook.db.engine import Store
from logbook.db.models import Arm, Hypothesis, Run
from logbook.db.queries import open_audit_ids, seed_shown
from logbook.db.runstatus import ACTIVE, FINISHED


@dataclass(frozen=True)
class RunEvent:
    """A run started or ended since the last look."""

    kind: str  # started or ended
    run_id: int
    arm: str
    seed: int | None  # None while an audit keeps it hidden
    status: str
    value: float | None  # the entry's metric, when it ended with one
    metric: str
    wall_time_s: float | None

    def line(self) -> str:
        seed = "hidden" if self.seed is None else self.seed
        if self.kind == "started":
            return f"run {self.run_id} {self.arm} seed {seed}: started"
        value = f" {self.metric} = {self.value:.6g}" if self.value is not None else ""
        took = f" ({self.wall_time_s:.1f} s)" if self.wall_time_s is not None else ""
        return f"run {self.run_id} {self.arm} seed {seed}: {self.status}{value}{took}"


@dataclass
class Progress:
    """Where a set of runs stands."""

    total: int
    counts: Counter = field(default_factory=Counter)
    eta_s: float | None = None

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.counts.items() if status in FINISHED)

    @property
    def done(self) -> bool:
        return self.finished >= self.total

    def summary(self) -> str:
        bad = [f"{self.counts[s]} {s}" for s in ("failed", "diverged", "crashed", "cancelled") if self.counts[s]]
        eta = f"; about {_duration(self.eta_s)} left" if self.eta_s is not None and not self.done else ""
        return (f"{self.finished}/{self.total} ended" + (f" ({', '.join(bad)})" if bad else "")
                + f", {self.counts['running']} running, {self.counts['queued']} queued{eta}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Watcher:
    """Looks at ``run_ids`` each time ``look`` is called and reports what changed."""

    def __init__(self, store: Store, run_ids: list[int]):
        self.store, self.run_ids = store, list(run_ids)
        self.seen: dict[int, str] = {}

    def look(self) -> tuple[list[RunEvent], Progress]:
        with self.store.session() as session:
            rows = session.exec(
                select(Run, Arm.name, Hypothesis.metric).join(Arm, Arm.id == Run.arm_id)
                .join(Hypothesis, Hypothesis.id == Arm.hypothesis_id).where(col(Run.id).in_(self.run_ids))
            ).all()
            hidden_audits = open_audit_ids(session)
        events: list[RunEvent] = []
        progress = Progress(total=len(self.run_ids))
        walls, running = [], 0
        for run, arm, metric in sorted(rows, key=lambda row: row[0].id):
            progress.counts[run.status] += 1
            before = self.seen.get(run.id)
            if run.wall_time_s is not None and run.status in FINISHED:
                walls.append(run.wall_time_s)
            running += run.status == "running"
            seed = run.seed if seed_shown(run, hidden_audits) else None
            if run.status == "running" and before not in ("running", *FINISHED):
                events.append(RunEvent("started", run.id, arm, seed, run.status, None, metric, None))
            if run.status in FINISHED and before not in FINISHED:
                value = (run.final_metrics or {}).get(metric)
                value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
                events.append(RunEvent("ended", run.id, arm, seed, run.status, value, metric, run.wall_time_s))
            self.seen[run.id] = run.status
        left = sum(progress.counts[s] for s in ACTIVE)
        if walls and left:
            progress.eta_s = sum(walls) / len(walls) * left / max(1, running)
        return events, progress
