"""The run screen: one seed's status, live log, curves and provenance, and its environment
compared with another run's."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, RichLog, Static

from logbook.tui.messages import RunLoaded
from logbook.tui.screens.base import BaseScreen
from logbook.tui.widgets import number, seed_text, sparkline


class RunScreen(BaseScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("d", "toggle_diff", "Env diff")]

    def __init__(self, run_id: int):
        super().__init__()
        self.run_id = run_id
        self.show_diff = False
        self.last_log = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="run-body"):
            yield Static(id="summary", classes="card")
            yield Static(id="run-curves", classes="card")
            yield RichLog(id="log", max_lines=400, wrap=False, markup=False)
            yield Static(id="provenance", classes="card")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(self.app.refresh_s, self.load)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        from logbook.tui.data import previous_run, run_view

        view = run_view(self.app.store, self.run_id)
        other = previous_run(self.app.store, self.run_id) if self.show_diff else None
        self.post_message(RunLoaded(view, run_view(self.app.store, other) if other else None))

    def on_run_loaded(self, message: RunLoaded) -> None:
        r = message.view
        self.title, self.sub_title = f"run {r['id']}", f"{r['entry']} / {r['arm']} / seed {seed_text(r['seed'])}"
        summary = Text()
        summary.append(f"{r['status']}", style="bold red" if r["status"] in ("failed", "crashed", "diverged") else "bold")
        summary.append(f" · seed {seed_text(r['seed'])} ({r['origin']}, attempt {r['attempt']}) · device {r['device'] or '–'}"
                       + (f":{r['gpu']}" if r["gpu"] else "") + f" · {number(r['duration_s'], 3)} s"
                       + (f" · batch of {r['batch_size']}" if r["batch_size"] and r["batch_size"] > 1 else "") + "\n")
        summary.append(f"started {r['started_at'] or '–'} · ended {r['ended_at'] or '–'}\n", style="dim")
        for name, value in sorted(r["final_metrics"].items()):
            summary.append(f"{name} = {number(value, 6)}   ")
        if r["error"] and r["status"] != "succeeded":
            summary.append("\n" + r["error"].strip().splitlines()[-1], style="red")
        self.query_one("#summary", Static).update(summary)
        curves = Text()
        for name, values in sorted(r["curves"].items()):
            curves.append(f"{name[:14]:<14} {sparkline(values, 50)} {number(values[-1], 4)}\n")
        self.query_one("#run-curves", Static).update(curves or Text("no metric points", style="dim"))
        if r["log"] != self.last_log:
            log = self.query_one(RichLog)
            log.clear()
            log.write(r["log"] or "(no log yet)")
            self.last_log = r["log"]
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
        if self.show_diff:
            if other is None:
                text.append("no other finished run to compare with\n", style="dim")
            else:
                changes = environment_diff(env, other["environment"])
                text.append(f"environment vs run {other['id']}: {len(changes) or 'no'} differences\n", style="bold")
                for key, left, right in changes[:20]:
                    text.append(f"  {key}: {left!r} ≠ {right!r}\n")
        return text

    def action_toggle_diff(self) -> None:
        self.show_diff = not self.show_diff
        self.load()
