"""The terminal app (Textual). Screens load data in thread workers, which post messages named as
past events; only message handlers change widgets. Any worker error reaches one place,
``on_worker_state_changed``, which shows it in a modal. Closing the app never stops runs: they
belong to detached workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from logbook.db.engine import Store, open_store
from logbook.errors import InputError, LogbookError
from logbook.tui.messages import ActionFinished
from logbook.tui.screens.logbook import LogbookScreen, run_editor
from logbook.tui.screens.modals import ErrorScreen, HelpScreen


class LogbookApp(App):
    CSS_PATH = "logbook.tcss"
    TITLE = "negative-results logbook"
    BINDINGS = [
        Binding("question_mark", "help", "Keys"),
        Binding("t", "toggle_theme", "Light/dark", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, db_path: Path | str, refresh_s: float = 2.0, open_entry: int | None = None):
        super().__init__()
        self.db_path = Path(db_path)
        self.open_entry = open_entry
        self.refresh_s = refresh_s
        self.store: Store = open_store(self.db_path, mode="auto")  # read-only where it cannot be written
        self.sub_title = str(self.db_path)

    def on_mount(self) -> None:
        self.push_screen(LogbookScreen())
        if self.open_entry is not None:
            from logbook.tui.screens.entry import EntryScreen

            self.push_screen(EntryScreen(self.open_entry))

    def on_unmount(self) -> None:
        self.store.dispose()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.worker_failed(event.worker.error)

    def worker_failed(self, error: BaseException | None) -> None:
        """The one error path: a failed worker's error becomes a modal, never a crash."""
        if isinstance(error, InputError):
            text = "\n".join(error.lines)
        elif isinstance(error, LogbookError):
            text = str(error)
        else:
            text = f"{type(error).__name__}: {error}"
        self.push_screen(ErrorScreen("That did not work", text))

    def on_action_finished(self, message: ActionFinished) -> None:
        self.notify(message.text)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_queue(self) -> None:
        from logbook.tui.screens.queue import QueueScreen

        self.push_screen(QueueScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Queue", "Workers, GPU slots and running runs", self.action_queue)
        yield SystemCommand("Keys", "Every key of every screen", self.action_help)
        yield SystemCommand("Light or dark", "Switch the theme", self.action_toggle_theme)
        if isinstance(screen, LogbookScreen):
            yield SystemCommand("New entry", "Write a hypothesis in $EDITOR and register it", screen.action_new_entry)
        for name, label, help_text in (("run", "Run planned seeds", "Queue every arm's planned seeds"),
                                       ("add_seeds", "Add seeds", "More seeds per arm (anytime-valid verdict)"),
                                       ("cancel", "Cancel runs", "Cancel queued and running runs"),
                                       ("requeue", "Requeue failed runs", "Try failed or crashed runs again"),
                                       ("open_run", "Open run", "The highlighted run: log, curves, environment"),
                                       ("amend", "Amend", "A dated change with a reason"),
                                       ("export", "Export", "Markdown, LaTeX, JSON or CSV, to a folder you choose"),
                                       ("audit", "Audit", "Rerun on fresh committed seeds")):
            action = getattr(screen, f"action_{name}", None)
            if action is not None:
                yield SystemCommand(label, help_text, action)

    def edit_file(self, path: Path) -> None:
        """Open ``path`` in $EDITOR with the app suspended (tests replace this)."""
        with self.suspend():
            run_editor(path)


def run_app(db_path: Path | str, open_entry: int | None = None) -> None:
    LogbookApp(db_path, open_entry=open_entry).run()
