"""Modal screens: help, errors, and the small forms (add seeds, amend)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

KEY_NAMES = {"slash": "/", "question_mark": "?", "plus": "+", "escape": "Esc", "enter": "Enter", "pagedown": "PgDn",
             "pageup": "PgUp", "space": "Space", "tab": "Tab", "home": "Home", "end": "End", "delete": "Del",
             "up": "↑", "down": "↓", "left": "←", "right": "→"}
TABLE_KEYS = [("↑ ↓", "move the cursor"), ("Home End", "first, last row"), ("PgUp PgDn", "a page up, down"),
              ("← →", "scroll columns that do not fit"), ("Enter", "open the row"), ("Tab", "next table or box")]
FILTER_KEYS = [("words", "title, slug, metric, hypothesis, notes, arms, tags, trainer"), ("tag:X", "tagged X"),
               ("verdict:X", "state: positive negative inconclusive unjudged no-results draft withdrawn"),
               ("status:X", "draft registered running concluded"), ("metric:X", "the metric"),
               ("trainer:X", "trainer name, command or none"), ("withdrawn:yes", "withdrawn (any: all)")]


def key_display(key: str) -> str:
    """A binding's keys as people type them: ``slash,question_mark`` reads ``/ ?``."""
    return " ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in key.split(","))


def key_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every screen's keys, read from the screens' own bindings (so help never falls behind), then
    what tables and the filter understand."""
    from logbook.tui.app import PALETTE_NAMES, LogbookApp
    from logbook.tui.screens.entry import EntryScreen
    from logbook.tui.screens.logbook import LogbookScreen
    from logbook.tui.screens.compare import CompareScreen
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


def keys_text(sections: list[tuple[str, list[tuple[str, str]]]], width: int) -> Text:
    """The sections laid out in as many columns as ``width`` holds; an entry never wraps (one too
    long for the width is cut with …)."""
    text = Text()
    for name, entries in sections:
        text.append(name + "\n", style="bold underline")
        cells = [(k, d) for k, d in entries]
        cell_width = min(width, max(len(k) + 1 + len(d) for k, d in cells) + 3)
        per_row = max(1, width // cell_width)
        for start in range(0, len(cells), per_row):
            line = Text()
            for key, description in cells[start:start + per_row]:
                entry = f"{key} {description}"
                if len(entry) > cell_width - 1:
                    entry = entry[: cell_width - 2] + "…"
                line.append(key, style="bold")
                line.append(entry[len(key):].ljust(cell_width - len(key)))
            line.rstrip()
            text.append_text(line)
            text.append("\n")
    text.rstrip()
    return text


class HelpScreen(ModalScreen[None]):
    """Every key of every screen, laid out for the terminal's width."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="help"):
            yield Label("Keys   (Esc closes; PgUp/PgDn scroll)", classes="card-title")
            with VerticalScroll(id="help-body"):
                yield Static(id="keys")

    def on_mount(self) -> None:
        self.lay_out()

    def on_resize(self) -> None:
        self.lay_out()

    def lay_out(self) -> None:
        width = max(20, self.app.size.width - 10)  # the modal's border, padding and margin
        self.query_one("#keys", Static).update(keys_text(key_sections(), width))


class ErrorScreen(ModalScreen[bool]):
    """Shows an error (one line per problem). Enter (when ``retry``) answers True, Esc False."""

    BINDINGS = [Binding("escape", "close(False)", "Close"), Binding("enter", "close(True)", "Edit again", show=False)]

    def __init__(self, title: str, text: str, retry: bool = False):
        super().__init__()
        self.title_text, self.text, self.retry = title, text, retry

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label(self.title_text, classes="card-title")
            yield Static(self.text, id="error-text", markup=False)
            yield Static("Enter: edit again   Esc: discard" if self.retry else "Esc: close", classes="hint")

    def action_close(self, answer: bool) -> None:
        self.dismiss(answer and self.retry)


class ConfirmScreen(ModalScreen[bool]):
    """Shows what an action would run (commands, runs, hours); y or Enter confirms, n or Esc cancels."""

    BINDINGS = [Binding("y,enter", "answer(True)", "Run"), Binding("n,escape", "answer(False)", "Cancel")]

    def __init__(self, title: str, text: str):
        super().__init__()
        self.title_text, self.text = title, text

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label(self.title_text, classes="card-title")
            yield Static(self.text, id="confirm-text", markup=False)
            yield Static("y / Enter: run   n / Esc: cancel", classes="hint")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class FormScreen(ModalScreen[dict | None]):
    """A few labelled inputs; Enter on the last submits their values, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: list[tuple[str, str]]):
        super().__init__()
        self.title_text, self.fields = title, fields

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label(self.title_text, classes="card-title")
            for name, placeholder in self.fields:
                yield Input(placeholder=placeholder, id=f"field-{name}")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        if event.input is not inputs[-1]:
            inputs[inputs.index(event.input) + 1].focus()
            return
        self.dismiss({name: self.query_one(f"#field-{name}", Input).value for name, _ in self.fields})

    def action_cancel(self) -> None:
        self.dismiss(None)
