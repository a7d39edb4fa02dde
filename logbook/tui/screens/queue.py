"""The queue screen: workers and their GPU slots, and the runs queued or running, with time left."""

from __future__ import annotations

from datetime import datetime, timezone

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from logbook.db.runstatus import ACTIVE
from logbook.tui.messages import QueueLoaded
from logbook.tui.screens.base import BaseScreen
from logbook.tui.widgets import CursorTable, number, refill_table, seed_text


class QueueScreen(BaseScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="workers", classes="card")
        yield CursorTable(id="active", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "queue"
        table = self.query_one(DataTable)
        for column in ("run", "entry", "arm", "seed", "status", "slot", "elapsed", "left (est.)"):
            table.add_column(column, key=column)
        table.focus()
        self.load()
        self.set_interval(self.app.refresh_s, self.load)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        from logbook.engine.queue import status

        self.post_message(QueueLoaded(status(self.app.store)))

    def on_queue_loaded(self, message: QueueLoaded) -> None:
        info = message.info
        live = [w for w in info["workers"] if w["alive"]]
        lines = [f"{len(live)} worker(s) running · runs: " + (", ".join(f"{n} {s}" for s, n in info["counts"].items()) or "none")]
        for w in live:
            slots = ", ".join(s["device"] + ("" if s["gpu"] is None else ":" + s["gpu"]) for s in w["slots"])
            lines.append(f"  worker {w['id']} pid {w['pid']} on {w['host']} · slots {slots} · heartbeat {w['heartbeat_at']}")
        self.query_one("#workers", Static).update("\n".join(lines))
        typical: dict[tuple[str, str], list[float]] = {}
        for r in info["runs"]:
            if r["status"] == "succeeded" and r["wall_time_s"]:
                typical.setdefault((r["entry"], r["arm"]), []).append(r["wall_time_s"])
        now = datetime.now(timezone.utc)
        rows = []
        for r in info["runs"]:
            if r["status"] not in ACTIVE:
                continue
            elapsed = (now - datetime.fromisoformat(r["started_at"].replace("Z", "+00:00"))).total_seconds() if r["started_at"] else None
            past = typical.get((r["entry"], r["arm"]))
            left = max(0.0, sum(past) / len(past) - (elapsed or 0)) if past else None
            rows.append((str(r["id"]), (str(r["id"]), r["entry"][:24], r["arm"], seed_text(r["seed"]), r["status"],
                         (f"slurm {r['slurm_job_id'] or ''} {r['slurm_state'] or ''} {r['node'] or ''}".rstrip()
                          if r.get("executor") == "slurm" else (r["device"] or "–") + (f":{r['gpu']}" if r["gpu"] else "")),
                         "–" if elapsed is None else f"{elapsed:.0f}s", "–" if left is None else f"~{number(left, 3)}s")))
        refill_table(self.query_one(DataTable), rows)  # the cursor stays on its run
