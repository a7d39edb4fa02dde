"""The terminal app (Textual). Screens load data in thread workers, which post messages named as
past events; only message handlers change widgets. Any worker error reaches one place,
``on_worker_state_changed``, which shows it in a modal. Closing the app never stops runs: they
belong to detached workers.
"""

from __future__ import annotations

from functools import partial
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
from logbook.tui.screens.modals import FILTER_KEYS, TABLE_KEYS, ErrorScreen, HelpScreen, key_display


class LogbookApp(App):
    CSS_PATH = "logbook.tcss"
    TITLE = "negative-results logbook"
    BINDINGS = [
        Binding("question_mark", "help", "Keys"),
        Binding("t", "toggle_theme", "Light/dark", show=False),
        Binding("Q", "queue", "Queue", show=False),
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
        self.push_screen(HelpScreen(key_sections()))

    def action_queue(self) -> None:
        from logbook.tui.screens.queue import QueueScreen

        if not isinstance(self.screen, QueueScreen):
            self.push_screen(QueueScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's own commands (less its "Keys" panel: ours is the help), then every action a
        key reaches on this screen and everywhere, each once."""
        for command in super().get_system_commands(screen):
            if command.title != "Keys":
                yield command
        yield SystemCommand("Keys", "Every key of every screen", self.action_help)
        seen = {"help"}
        for title, help_text, action, target in palette_actions(screen, self.BINDINGS):
            if action not in seen:
                seen.add(action)
                yield SystemCommand(title, help_text, partial(self.run_action, action, target))

    def edit_file(self, path: Path) -> None:
        """Open ``path`` in $EDITOR with the app suspended (tests replace this)."""
        with self.suspend():
            run_editor(path)


# Longer palette titles and explanations than the footer's, by action name.
PALETTE_NAMES = {
    "filter": ("Filter", "Filter the list: words, tag:, verdict:, status:, metric:, trainer:"),
    "sort": ("Sort", "Sort by the next column (the header shows which, ▲ or ▼)"),
    "reverse_sort": ("Reverse sort", "Flip the sort direction"),
    "open_entry": ("Open entry", "Open the entry under the cursor"),
    "new_entry": ("New entry", "Write a hypothesis in $EDITOR and register it"),
    "import_runs": ("Import runs", "From MLflow, TensorBoard, W&B or a CSV (retrospective)"),
    "app.queue": ("Queue", "Workers, GPU slots and running runs"),
    "queue": ("Queue", "Workers, GPU slots and running runs"),
    "toggle_theme": ("Light or dark", "Switch the theme"),
    "clear_filter": ("Clear filter", "Show every entry again"),
    "app.pop_screen": ("Back", "The screen before"),
    "quit": ("Quit", "Close the app (runs keep going)"),
    "help": ("Keys", "Every key of every screen"),
    "run": ("Run planned seeds", "Queue every arm's planned seeds"),
    "add_seeds": ("Add seeds", "More seeds per arm (anytime-valid verdict)"),
    "cancel": ("Cancel runs", "Cancel queued and running runs"),
    "requeue": ("Requeue failed runs", "Try failed or crashed runs again"),
    "amend": ("Amend", "A dated change with a reason"),
    "export": ("Export", "Markdown, LaTeX, JSON or CSV, to a folder you choose"),
    "open_run": ("Open run", "The highlighted run: log, curves, environment"),
    "audit": ("Audit", "Rerun on fresh committed seeds"),
    "toggle_diff": ("Environment diff", "Pick another run and compare environments"),
    "mark": ("Mark", "Mark or unmark the entry under the cursor for comparing (✓ in the first column)"),
    "compare": ("Compare", "The marked entries side by side (none marked: the arms of the entry at the cursor)"),
}
NOT_IN_PALETTE = {"app.pop_screen", "clear_filter", "quit", "help", "page(1)", "page(-1)"}  # Esc, q, ?, paging


def key_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every screen's keys, read from the screens' own bindings (so help never falls behind), then
    what tables and the filter understand."""
    from logbook.tui.screens.compare import CompareScreen
    from logbook.tui.screens.entry import EntryScreen
    from logbook.tui.screens.queue import QueueScreen
    from logbook.tui.screens.run import RunScreen

    def keys(bindings) -> list[tuple[str, str]]:  # noqa: ANN001  (named as in the command palette)
        return [(key_display(b.key), PALETTE_NAMES.get(b.action, (b.description or b.action.replace("_", " "),))[0])
                for b in bindings if isinstance(b, Binding) and b.action not in ("dismiss",)]

    return [("Logbook", keys(LogbookScreen.BINDINGS) + [("Enter", "open entry")]), ("Entry", keys(EntryScreen.BINDINGS)),
            ("Run", keys(RunScreen.BINDINGS)), ("Queue", keys(QueueScreen.BINDINGS)),
            ("Compare", keys(CompareScreen.BINDINGS)),
            ("Everywhere", keys(LogbookApp.BINDINGS) + [("ctrl+p", "command palette")]), ("Tables", TABLE_KEYS),
            ("Filter (/)", FILTER_KEYS)]


def palette_actions(screen: Screen, app_bindings: list) -> list[tuple[str, str, str, object]]:
    """``(title, help, action, namespace)`` for every action a key reaches on ``screen`` and in the
    app, and for the list, opening the entry under the cursor (Enter on the table)."""
    found = []
    extra = [Binding("enter", "open_entry", "Open entry")] if isinstance(screen, LogbookScreen) else []
    for target, bindings in ((screen, [*screen.BINDINGS, *extra]), (None, app_bindings)):
        for binding in bindings:
            if not isinstance(binding, Binding) or binding.action in NOT_IN_PALETTE:
                continue
            title, help_text = PALETTE_NAMES.get(binding.action, (binding.description, binding.tooltip or binding.description))
            found.append((title, help_text, binding.action, target))
    return found


def run_app(db_path: Path | str, open_entry: int | None = None) -> None:
    LogbookApp(db_path, open_entry=open_entry).run()
