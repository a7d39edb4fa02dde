"""The queue screen: workers and their GPU slots, the runs queued or running (why each exists, time
spent and left) and the runs that ended lately; cancel, requeue or open the highlighted run."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from logbook.db.runstatus import ACTIVE, RETRYABLE
from logbook.tui.messages import ActionFinished, LaunchPreviewed, QueueLoaded
from logbook.tui.screens.base import BaseScreen
from logbook.tui.screens.modals import ConfirmScreen
from logbook.tui.widgets import CursorTable, cursor_key, refill_table, seed_text

RECENT = 20  # ended runs listed under the active ones (to requeue or open)
WIDE = 110  # from this many columns the seed and slot columns are shown too
COLUMNS = (("run", 4), ("entry", 14), ("arm", 10), ("origin", 10), ("status", 9), ("elapsed", 9), ("left", 7))


def queue_rows(info: dict[str, Any], wide: bool) -> list[tuple[str, list[Any]]]:
    """The table's rows: active runs first (with elapsed time, share done and time left), then the
    runs that ended most recently, newest first."""
    active = [r for r in info["runs"] if r["status"] in ACTIVE]
    ended = sorted((r for r in info["runs"] if r["status"] not in ACTIVE), key=lambda r: r["ended_at"] or "",
                   reverse=True)[:RECENT]
    rows = []
    for r in active + ended:
        style = "yellow" if r["status"] in ACTIVE else ("red" if r["status"] in RETRYABLE else "dim")
        cells: list[Any] = [str(r["id"]), Text(r["entry"]), Text(r["arm"]), r["origin_label"], Text(r["status"], style=style)]
        if wide:
            cells.insert(3, seed_text(r["seed"]))
            cells.append(f"slurm {r['slurm_job_id'] or ''} {r['slurm_state'] or ''} {r['node'] or ''}".rstrip()
                         if r.get("executor") == "slurm" else (r["device"] or "–") + (f":{r['gpu']}" if r["gpu"] else ""))
        cells += [r["elapsed"], r["left"]] if r["status"] in ACTIVE else ["", ""]
        rows.append((str(r["id"]), cells))
    return rows


class QueueScreen(BaseScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("c", "cancel", "Cancel run"),
        Binding("R", "requeue", "Requeue run"),
        Binding("o", "open_run", "Open run"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.info: dict[str, Any] | None = None
        self.wide: bool | None = None
        self.keep: str | None = None  # the run under the cursor while the columns are rebuilt

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="workers", classes="card")
        yield CursorTable(id="active", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "queue"
        self.query_one(DataTable).focus()
        self.set_columns()
        self.load()
        self.set_interval(self.app.refresh_s, self.load)

    def set_columns(self) -> None:
        """Fixed column widths that fit the screen (the slot column only where there is room)."""
        wide = self.app.size.width >= WIDE
        if wide == self.wide:
            return
        self.wide = wide
        table = self.query_one(DataTable)
        self.keep = cursor_key(table)
        table.clear(columns=True)
        columns = list(COLUMNS)
        if wide:
            columns.insert(3, ("seed", 10))
            columns.insert(6, ("slot", 14))
        for name, width in columns:
            table.add_column(name, key=name, width=width)
        if self.info is not None:
            self.show(self.info)

    def on_resize(self) -> None:
        self.set_columns()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        from logbook.tui.data import queue_view

        self.post_message(QueueLoaded(queue_view(self.app.store)))

    def on_queue_loaded(self, message: QueueLoaded) -> None:
        self.info = message.info
        self.show(message.info)

    def show(self, info: dict[str, Any]) -> None:
        live = [w for w in info["workers"] if w["alive"]]
        lines = [f"{len(live)} worker(s) running · runs: " + (", ".join(f"{n} {s}" for s, n in info["counts"].items()) or "none")]
        for w in live:
            slots = ", ".join(s["device"] + ("" if s["gpu"] is None else ":" + s["gpu"]) for s in w["slots"])
            lines.append(f"  worker {w['id']} pid {w['pid']} on {w['host']} · slots {slots} · heartbeat {w['heartbeat_at']}")
        self.query_one("#workers", Static).update("\n".join(lines))
        counts = info["counts"]
        self.sub_title = f"{counts.get('queued', 0)} queued · {counts.get('running', 0)} running"
        refill_table(self.query_one(DataTable), queue_rows(info, bool(self.wide)), self.keep)  # the cursor stays on its run
        self.keep = None

    def highlighted(self) -> int | None:
        key = cursor_key(self.query_one(DataTable))
        return None if key is None else int(key)

    def run_row(self, run_id: int) -> dict[str, Any] | None:
        return next((r for r in (self.info or {}).get("runs", []) if r["id"] == run_id), None)

    # ---- actions on the highlighted run ---------------------------------------------------------

    @on(DataTable.RowSelected, "#active")
    def selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        from logbook.tui.screens.run import RunScreen

        run_id = self.highlighted()
        if run_id is not None:
            self.app.push_screen(RunScreen(run_id))

    def action_cancel(self) -> None:
        run_id = self.highlighted()
        run = self.run_row(run_id) if run_id is not None else None
        if run is None:
            return
        if run["status"] not in ACTIVE:
            self.notify(f"run {run_id} is {run['status']}: only queued or running runs can be cancelled", severity="warning")
            return
        what = "cancel it before it starts" if run["status"] == "queued" else "ask its worker to stop it"
        text = f"run {run_id} · {run['entry']} / {run['arm']} · seed {seed_text(run['seed'])} · {run['status']}: {what}"

        def answered(yes: bool | None) -> None:
            if yes:
                self.act("cancel", run_id)

        self.app.push_screen(ConfirmScreen("Cancel this run?", text, yes="cancel the run", no="keep it"), answered)

    def action_requeue(self) -> None:
        run_id = self.highlighted()
        run = self.run_row(run_id) if run_id is not None else None
        if run is None:
            return
        if run["status"] not in RETRYABLE:
            self.notify(f"run {run_id} is {run['status']}: only failed, crashed, diverged or cancelled runs are requeued",
                        severity="warning")
            return
        self.preview_requeue(run_id, str(run["entry_id"]))

    @work(thread=True, group="action", exit_on_error=False)
    def preview_requeue(self, run_id: int, ref: str) -> None:
        """The command preview the CLI's requeue shows, for the confirmation dialog."""
        from logbook.engine.confirm import preview

        shown = preview(self.app.store, ref, runs=1)
        self.post_message(LaunchPreviewed("requeue", {"run_id": run_id}, shown.lines(), shown.unconfirmed))

    def on_launch_previewed(self, message: LaunchPreviewed) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.act("requeue", message.kwargs["run_id"], message.unconfirmed)

        self.app.push_screen(ConfirmScreen("Requeue this run?", "\n".join(message.lines)), answered)

    @work(thread=True, group="action", exit_on_error=False)
    def act(self, what: str, run_id: int, confirmed: list | None = None) -> None:
        from logbook.engine import queue
        from logbook.engine.confirm import record_confirmation

        store = self.app.store
        if what == "cancel":
            counts = queue.cancel(store, run_id=run_id)
            text = (f"cancelled run {run_id}" if counts.get("cancelled") else
                    f"asked the worker to stop run {run_id}" if counts.get("stopping") else f"run {run_id} had already ended")
        else:
            record_confirmation(store, confirmed or [])
            ids = queue.requeue(store, run_id=run_id)
            pid = None
            for executor in queue.executors_of(store, ids):
                pid = queue.ensure_worker(store, executor=executor) or pid
            text = (f"requeued run {run_id} as run {ids[0]}" if ids else f"run {run_id} was already retried") + (
                f"; started worker {pid}" if pid else "")
        self.post_message(ActionFinished(text))
        self.load()
