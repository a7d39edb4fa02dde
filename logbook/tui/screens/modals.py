"""Modal screens: help, errors, confirmations, the small forms (add seeds, amend, export) and the
run picker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from logbook.tui.messages import FormAccepted, FormRejected

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
    """Every key of every screen (``sections``: titled lists of (keys, what they do)), laid out
    for the terminal's width."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]):
        super().__init__()
        self.sections = sections

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
        self.query_one("#keys", Static).update(keys_text(self.sections, width))


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

    def __init__(self, title: str, text: str, yes: str = "run", no: str = "cancel"):
        super().__init__()
        self.title_text, self.text, self.yes, self.no = title, text, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label(self.title_text, classes="card-title")
            yield Static(self.text, id="confirm-text", markup=False)
            yield Static(f"y / Enter: {self.yes}   n / Esc: {self.no}", classes="hint")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


@dataclass(frozen=True)
class Field:
    """One input of a form: a label above it (never cut), a short placeholder, a starting value,
    and, with ``choices``, a pick from a list instead of free text."""

    name: str
    label: str
    placeholder: str = ""
    value: str = ""
    choices: tuple[str, ...] = ()


def in_app_words(line: str, fields: list[Field]) -> str:
    """An error line as the form names things: ``--reason: …`` becomes ``Reason: …`` (the CLI's
    flag names mean nothing in the app)."""
    for f in fields:
        for prefix in (f"--{f.name}:", f"--{f.name.replace('_', '-')}:"):
            if line.startswith(prefix):
                return f.label.split(" (")[0].split(":")[0] + ":" + line[len(prefix):]
    return line


class FormScreen(ModalScreen[dict | None]):
    """A few labelled inputs; Enter moves to the next and submits on the last, Esc cancels.

    With ``submit`` (a function of the values, run in a thread worker, returning what to say), the
    form stays open until it succeeds: an InputError is shown in the form, in the form's words,
    with everything typed kept; on success the form closes with the values and the text is shown
    as a toast."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: list[Field | tuple[str, str]],
                 submit: Callable[[dict[str, str]], str] | None = None, hint: str = "Enter: next field, submit on the last"):
        super().__init__()
        self.title_text, self.submit, self.hint = title, submit, hint
        self.fields = [f if isinstance(f, Field) else Field(f[0], f[1]) for f in fields]

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal form"):
            yield Label(self.title_text, classes="card-title")
            for f in self.fields:
                yield Static(f.label, classes="field-label", markup=False)
                if f.choices:
                    yield Select([(c, c) for c in f.choices], value=f.value or f.choices[0], allow_blank=False,
                                 id=f"field-{f.name}")
                else:
                    yield Input(value=f.value, placeholder=f.placeholder, id=f"field-{f.name}")
            yield Static("", id="form-error", markup=False)
            yield Static(f"{self.hint}   Esc: cancel", classes="hint")

    def values(self) -> dict[str, str]:
        out = {}
        for f in self.fields:
            widget = self.query_one(f"#field-{f.name}")
            out[f.name] = str(widget.value)
        return out

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        if event.input is not inputs[-1]:
            inputs[inputs.index(event.input) + 1].focus()
            return
        if self.submit is None:
            self.dismiss(self.values())
        else:
            self.query_one("#form-error", Static).update("working…")
            self.send(self.values())

    @work(thread=True, exclusive=True, group="form", exit_on_error=False)
    def send(self, values: dict[str, str]) -> None:
        from logbook.errors import InputError, LogbookError

        try:
            text = self.submit(values)
        except InputError as exc:
            self.post_message(FormRejected([in_app_words(line, self.fields) for line in exc.lines]))
            return
        except LogbookError as exc:
            self.post_message(FormRejected([in_app_words(str(exc), self.fields)]))
            return
        self.post_message(FormAccepted(values, text))

    def on_form_rejected(self, message: FormRejected) -> None:
        self.query_one("#form-error", Static).update("\n".join(message.lines))

    def on_form_accepted(self, message: FormAccepted) -> None:
        self.app.notify(message.text)
        self.dismiss(message.values)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:  # anything but a refusal goes to the app's one error path
            self.query_one("#form-error", Static).update("")
            self.app.worker_failed(event.worker.error)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickRunScreen(ModalScreen[int | None]):
    """A list of runs to choose one from (Enter), or Esc for none."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, runs: list[dict[str, Any]]):
        super().__init__()
        self.title_text, self.runs = title, runs

    def compose(self) -> ComposeResult:
        from logbook.tui.data import origin_label
        from logbook.tui.widgets import seed_text

        with Vertical(classes="modal"):
            yield Label(self.title_text, classes="card-title")
            yield OptionList(*[Option(Text(f"run {r['id']} · {r['arm']} · seed {seed_text(r['seed'])} · {origin_label(r['origin'])}"
                                           f" · {r['status']}" + (f" · {r['host']}" if r.get("host") else "")), id=str(r["id"]))
                               for r in self.runs], id="pick-run")
            yield Static("↑↓: choose   Enter: compare   Esc: cancel", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReviewScreen(ModalScreen[str]):
    """A validated hypothesis file before it is registered: Enter or r registers it, d or Esc keeps
    it as a draft (the file stays where it is, nothing is written to the logbook), e edits again."""

    BINDINGS = [Binding("enter,r", "answer('register')", "Register now"), Binding("d,escape", "answer('draft')", "Keep as draft"),
                Binding("e", "answer('edit')", "Edit again")]

    def __init__(self, text: str, path: str):
        super().__init__()
        self.text, self.path = text, path

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Label("Register this entry? Registration is permanent", classes="card-title")
            yield Static(self.text, id="review-text", markup=False)
            yield Static(f"file: {self.path}", classes="hint", markup=False)
            yield Static("r / Enter: register now   d / Esc: keep as draft   e: edit again", classes="hint")

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)
