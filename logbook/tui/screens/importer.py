"""The import dialog: the fields of `logbook import`, a preview of the arms and seeds found, and
only then, on a second Enter, the retrospective entry is written."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from logbook.tui.messages import ActionFinished, ImportPreviewed

FIELDS = [  # (name, label, placeholder): one line each, so the form fits 80×24
    ("kind", "source", "mlflow, tensorboard, wandb or csv"),
    ("location", "location", "tracking URI, log or wandb folder, table"),
    ("experiment", "experiment", "MLflow experiment or W&B project"),
    ("arm_by", "arm by", "params.x, config.x, column or pattern"),
    ("seed_by", "seed by", "params.seed, a column or the pattern"),
    ("metric", "metric", "e.g. val_loss"),
    ("reduce", "reduce", "last (default), min, max or mean-last-K"),
    ("baseline", "baseline", "the baseline arm"),
    ("delta", "δ", "required, in metric units"),
    ("title", "title", "optional"),
    ("command", "command", "optional: rerun command with {seed}"),
    ("lower_is_better", "lower better", "y or n"),
]


def options_from(values: dict[str, str]):  # noqa: ANN201
    """The dialog's text fields as import options (the CLI's checks, the CLI's messages)."""
    from logbook.errors import InputError
    from logbook.importers.run import make_options

    try:
        delta = float(values["delta"])
    except ValueError as exc:
        raise InputError(f"delta: expected a number in metric units, got {values['delta']!r}") from exc
    return make_options(
        values["kind"].strip(), values["location"].strip(), experiment=values["experiment"].strip() or None,
        arm_by=values["arm_by"].strip(), seed_by=values["seed_by"].strip(), metric=values["metric"].strip(),
        reduce=values["reduce"].strip() or "last", baseline=values["baseline"].strip(), delta=delta,
        lower_is_better=values["lower_is_better"].strip().lower() in ("y", "yes", "true", "1"),
        title=values["title"].strip() or None, command=values["command"].strip() or None,
    )


class ImportScreen(ModalScreen[int | None]):
    """Enter moves to the next field; Enter on the last previews; Enter again imports. Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prefill: dict[str, str] | None = None):
        super().__init__()
        self.prefill = prefill or {}
        self.previewed: dict[str, Any] | None = None  # values, options and data of the last preview

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="modal", id="import-form"):
            yield Label("Import runs from another tracker (retrospective)", classes="card-title")
            yield Static("Enter: next · on the last: preview, again: import · Esc: cancel",
                         classes="hint", markup=False)
            for name, label, placeholder in FIELDS:
                with Horizontal(classes="import-row"):
                    yield Label(label, classes="field-label")
                    yield Input(value=self.prefill.get(name, ""), placeholder=placeholder, id=f"import-{name}")
            yield Static("Nothing is read or written until the preview.", id="import-preview", markup=False)

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#import-{name}", Input).value for name, _, _ in FIELDS}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        if event.input is not inputs[-1]:
            inputs[inputs.index(event.input) + 1].focus()
            return
        values = self.values()
        if self.previewed is not None and self.previewed["values"] == values:
            self.write(self.previewed)
        else:
            self.query_one("#import-preview", Static).update("reading the source…")
            self.preview(values)

    @work(thread=True, exclusive=True, group="import", exit_on_error=False)
    def preview(self, values: dict[str, str]) -> None:
        from logbook.importers.run import preview

        options = options_from(values)
        self.post_message(ImportPreviewed(values, options, preview(options)))

    def on_import_previewed(self, message: ImportPreviewed) -> None:
        self.previewed = {"values": message.values, "options": message.options, "data": message.data}
        seeds = message.data.seeds()
        lines = [f"{arm}{' (baseline)' if arm == message.options.baseline else ''}: {seeds[arm]} seeds"
                 for arm in message.data.arms]
        if message.data.skipped_unfinished:
            lines.append(f"{message.data.skipped_unfinished} runs still running are left out")
        lines.append("Enter again: import as a retrospective entry.   Esc: cancel.")
        self.query_one("#import-preview", Static).update("\n".join(lines))

    # description: Textual otherwise names a worker by the repr of its arguments, every imported curve here
    @work(thread=True, exclusive=True, group="import", exit_on_error=False, description="write the import")
    def write(self, previewed: dict[str, Any]) -> None:
        from logbook.importers.common import write_import

        result = write_import(self.app.store, previewed["options"], previewed["data"])
        what = "imported" if result["created"] else f"added {result['added_runs']} new runs to"
        self.app.post_message(ActionFinished(f"{what} entry {result['id']}: {result['slug']} (retrospective)"))
        self.app.call_from_thread(self.dismiss, result["id"])

    def action_cancel(self) -> None:
        self.dismiss(None)
