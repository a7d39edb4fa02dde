"""Modal screens: help, errors, and the small forms (add seeds, amend)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

KEYS = """\
Logbook            Enter open entry   / filter (words, tag:X, verdict:X)   s sort
                   n new entry        Q queue                               t light/dark
                   i import runs from MLflow, TensorBoard, W&B or a CSV (retrospective)
                   space mark   c compare the marked (or the arms of the one at the cursor)
Entry              r run planned seeds   + add seeds   c cancel   R requeue failed
                   m amend   e export (Markdown)   u audit   Enter open run   Esc back
Run                d diff environment against another run   Esc back
Compare            PgUp/PgDn scroll   Esc back
Everywhere         ? this help   ctrl+p command palette   q quit (runs keep going)"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label("Keys", classes="card-title")
            yield Static(KEYS)


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
