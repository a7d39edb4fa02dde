"""The run screen: one seed's status, live log, curves and provenance, and its environment
compared with another run's."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, RichLog, Static

from logbook.db.engine import ChangeWatch
from logbook.tui.data import duration, environment_changes, origin_label, plural
from logbook.tui.messages import OtherRunsListed, RunLoaded
from logbook.tui.screens.base import BaseScreen
from logbook.tui.screens.modals import PickRunScreen
from logbook.db.runstatus import ACTIVE
from logbook.tui.widgets import figure, seed_text, sparkline


class RunScreen(BaseScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("d", "toggle_diff", "Env diff")]

    def __init__(self, run_id: int):
        super().__init__()
        self.run_id = run_id
        self.compare_with: int | None = None  # the run whose environment is compared with this one's
        self.last_log = None
        self.status: str | None = None  # the run's status at the last read

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="run-body"):
            yield Static(id="summary", classes="card")
            yield Static(id="run-curves", classes="card")
            yield RichLog(id="log", max_lines=400, wrap=False, markup=False)
            yield Static(id="provenance", classes="card")
        yield Footer()

    def on_mount(self) -> None:
        self.changes = ChangeWatch(self.app.store)
        self.load()
        self.set_interval(self.app.refresh_s, lambda: self.load(on_timer=True))

    def on_unmount(self) -> None:
        self.changes.close()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self, on_timer: bool = False) -> None:
        """Read the run (and the run it is compared with). The timer's read is skipped while the run
        has ended and nothing was committed since the last read: an ended run's status, curves and
        log change only with a commit, and reading every point of a long run each tick is not free."""
        from logbook.tui.data import run_view

        changed, status = self.changes.changed(), self.status
        if on_timer and not changed and status is not None and status not in ACTIVE:
            return
        try:
            view = run_view(self.app.store, self.run_id)
            other = self.compare_with
            self.post_message(RunLoaded(view, run_view(self.app.store, other) if other else None))
        except Exception:
            self.changes.forget()  # a read that failed is tried again at the next tick
            raise

    def on_run_loaded(self, message: RunLoaded) -> None:
        r = message.view
        self.status = r["status"]
        self.title, self.sub_title = f"run {r['id']}", f"{r['entry']} / {r['arm']} / seed {seed_text(r['seed'])}"
        summary = Text()
        summary.append(f"{r['status']}", style="bold red" if r["status"] in ("failed", "crashed", "diverged") else "bold")
        summary.append(f" · seed {seed_text(r['seed'])} ({origin_label(r['origin'])}, attempt {r['attempt']}) · device {r['device'] or '–'}"
                       + (f":{r['gpu']}" if r["gpu"] else "") + f" · {duration(r['duration_s'])}"
                       + (f" · batch of {r['batch_size']}" if r["batch_size"] and r["batch_size"] > 1 else "") + "\n")
        if r["slurm"]:
            s = r["slurm"]
            summary.append(f"slurm job {s['job_id'] or '–'} · {s['state'] or '–'} · node {s['node'] or '–'}"
                           + (f" · requeued {s['requeues']}x" if s["requeues"] else "") + "\n")
        summary.append(f"started {r['started_at'] or '–'} · ended {r['ended_at'] or '–'}\n", style="dim")
        for name, value in sorted(r["final_metrics"].items()):
            summary.append(f"{name} = {figure(value, 6)}   ")
        if r["error"] and r["status"] != "succeeded":
            summary.append("\n" + r["error"].strip().splitlines()[-1], style="red")
        self.query_one("#summary", Static).update(summary)
        curves = Text()
        for name, values in sorted(r["curves"].items()):
            curves.append(f"{name[:14]:<14} {sparkline(values, 50)} {figure(values[-1], 4)}\n")
        self.query_one("#run-curves", Static).update(curves or Text("no metric points", style="dim"))
        text = (r["log"] or ("(no log yet)" if r["status"] in ACTIVE else "no output")) + (f"\n--- Slurm log ---\n{r['slurm']['log']}" if r["slurm"] and r["slurm"]["log"] else "")
        if text != self.last_log:
            log = self.query_one(RichLog)
            log.clear()
            log.write(text)
            self.last_log = text
        self.query_one("#provenance", Static).update(self.provenance(r, message.compare))

    def provenance(self, r: dict, other: dict | None) -> Text:
        from logbook.tui.data import environment_diff

        env = r["environment"]
        text = Text()
        text.append(f"commit {r['commit'] or 'none'}", style="bold")
        text.append(f" · {r['tree']} at registration\n")
        for line in r["diff"].splitlines()[:15]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
            text.append(line[:110] + "\n", style=style)
        torch = env.get("torch") or {}
        text.append(f"python {env.get('python', '–')} · {env.get('platform', '–')} · host {env.get('host', '–')}"
                    + (f" · torch {torch.get('version')}" if torch else "") + "\n", style="dim")
        if other is not None:
            changes, by_design = environment_changes(env, other["environment"])
            text.append(f"environment vs run {other['id']} ({other['arm']}, seed {seed_text(other['seed'])}): "
                        f"{plural(len(changes), 'difference')}\n", style="bold")
            for key, left, right in changes[:20]:
                text.append(f"  {key}: {left!r} ≠ {right!r}\n")
            if by_design:
                text.append("differ by design (set per run by the engine): "
                            + ", ".join(f"{key} {left!r} ≠ {right!r}" for key, left, right in by_design) + "\n", style="dim")
        return text

    def action_toggle_diff(self) -> None:
        """d: pick another run of the entry and compare environments; d again hides the comparison."""
        if self.compare_with is not None:
            self.compare_with = None
            self.load()
        else:
            self.list_other_runs()

    @work(thread=True, exclusive=True, group="other-runs", exit_on_error=False)
    def list_other_runs(self) -> None:
        from logbook.tui.data import other_runs

        self.post_message(OtherRunsListed(other_runs(self.app.store, self.run_id)))

    def on_other_runs_listed(self, message: OtherRunsListed) -> None:
        if not message.runs:
            self.notify("no other finished run of this entry to compare with")
            return

        def picked(run_id: int | None) -> None:
            if run_id is not None:
                self.compare_with = run_id
                self.load()

        self.app.push_screen(PickRunScreen("Compare the environment with which run?", message.runs), picked)
