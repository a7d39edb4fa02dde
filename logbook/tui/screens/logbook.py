"""The logbook screen: every entry as a row, filterable and sortable; Enter opens one."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input

from logbook.export.escape import terminal
from logbook.tui.data import entry_rows, matches
from logbook.tui.messages import ActionFinished, EntriesLoaded
from logbook.tui.screens.base import BaseScreen
from logbook.tui.screens.modals import ErrorScreen
from logbook.tui.widgets import badge, number

COLUMNS = {"#": 5, "title": 30, "verdict": 14, "effect [interval]": 26, "seeds": 9, "metric": 14, "arms": 4, "status": 10,
           "last activity": 16}  # fixed widths: the table never re-measures its cells while filtering
TITLE_WIDTH = 30  # so the verdict stays on screen at 80 columns
PAGE = 40  # rows put in the table at a time; more come as the cursor reaches the end
SORTS = {"#": "id", "title": "title", "verdict": "verdict", "effect [interval]": "effect", "last activity": "last_activity",
         "status": "status", "metric": "metric"}


class LogbookScreen(BaseScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("s", "sort", "Sort"),
        Binding("n", "new_entry", "New"),
        Binding("Q", "app.queue", "Queue"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.matching = 0
        self.sort_key, self.reverse = "id", False
        self.limit = PAGE

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: words, tag:rnn, verdict:negative", id="filter")
        yield DataTable(id="entries", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column, width in COLUMNS.items():
            table.add_column(column, key=column, width=width)
        table.focus()
        self.load()
        self.set_interval(self.app.refresh_s, self.load)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        self.post_message(EntriesLoaded(entry_rows(self.app.store)))

    def on_entries_loaded(self, message: EntriesLoaded) -> None:
        self.rows = message.rows
        self.sort_rows()
        self.show_rows()

    def sort_rows(self) -> None:
        key = self.sort_key
        self.rows.sort(key=lambda r: (r[key] is None, r[key] if r[key] is not None else 0), reverse=self.reverse)

    def show_rows(self) -> None:
        table = self.query_one(DataTable)
        current = None
        if table.row_count and table.cursor_row < table.row_count:
            current = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        query = self.query_one("#filter", Input).value
        rows = [r for r in self.rows if matches(r, query)]  # self.rows is kept sorted
        self.matching = len(rows)
        table.clear()
        for r in rows[: self.limit]:
            arrow = "↓" if r["goal"] == "minimize" else "↑"
            effect = "–" if r["effect"] is None else f"{number(r['effect'], 3)} [{number(r['ci_low'], 3)}, {number(r['ci_high'], 3)}]"
            seeds = f"{r['done']}/{r['planned']}" + (f" +{r['active']}" if r["active"] else "")
            title = terminal(r["title"])
            title = title if len(title) <= TITLE_WIDTH else title[: TITLE_WIDTH - 1] + "…"
            table.add_row(
                str(r["id"]), Text(title), badge(r["verdict"]), effect, seeds, Text(terminal(f"{r['metric']} {arrow}")),
                str(r["arms"]), r["status"], (r["last_activity"] or "")[:16].replace("T", " "), key=str(r["id"]),
            )
        if current is not None and current in table.rows:
            table.move_cursor(row=table.get_row_index(current))
        shown = f"showing {table.row_count} of " if table.row_count < len(rows) else ""
        self.sub_title = f"{shown}{len(rows)} of {len(self.rows)} entries" + (f" matching “{query}”" if query else "")

    @on(DataTable.RowHighlighted, "#entries")
    def load_more(self, event: DataTable.RowHighlighted) -> None:
        table = self.query_one(DataTable)
        if event.cursor_row >= table.row_count - 1 and table.row_count < self.matching:
            self.limit += PAGE
            self.show_rows()

    @on(DataTable.RowSelected, "#entries")
    def open_entry(self, event: DataTable.RowSelected) -> None:
        from logbook.tui.screens.entry import EntryScreen

        self.app.push_screen(EntryScreen(int(event.row_key.value)))

    @on(DataTable.HeaderSelected, "#entries")
    def sort_by_header(self, event: DataTable.HeaderSelected) -> None:
        key = SORTS.get(str(event.column_key.value))
        if key:
            self.reverse = not self.reverse if key == self.sort_key else False
            self.sort_key = key
            self.sort_rows()
            self.show_rows()

    def action_sort(self) -> None:
        order = list(dict.fromkeys(SORTS.values()))
        self.sort_key = order[(order.index(self.sort_key) + 1) % len(order)]
        self.reverse = self.sort_key in ("last_activity", "effect")
        self.notify(f"sorted by {self.sort_key}")
        self.sort_rows()
        self.show_rows()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self.query_one(DataTable).focus()
        self.show_rows()

    @on(Input.Changed, "#filter")
    def filter_changed(self) -> None:
        self.limit = PAGE
        self.show_rows()

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one(DataTable).focus()

    # ---- new entry: $EDITOR on a template, validated with the CLI's messages -----------------

    def action_new_entry(self, text: str | None = None) -> None:
        if text is None:
            text = (resources.files("logbook") / "data" / "gated-rnn.yaml").read_text(encoding="utf-8")
        path = Path(tempfile.mkdtemp(prefix="logbook-new-")) / "hypothesis.yaml"
        path.write_text(text, encoding="utf-8")
        self.app.edit_file(path)
        self.check_new_entry(path)

    def check_new_entry(self, path: Path) -> None:
        from logbook.entries.file import load_entry_file
        from logbook.errors import InputError

        try:
            spec = load_entry_file(path)
        except InputError as exc:
            def again(edit: bool | None) -> None:
                if edit:
                    self.action_new_entry(path.read_text(encoding="utf-8"))

            self.app.push_screen(ErrorScreen("The hypothesis file has problems; nothing was written",
                                             "\n".join(exc.lines), retry=True), again)
            return
        self.register_entry(spec)

    @work(thread=True, group="action", exit_on_error=False)
    def register_entry(self, spec) -> None:  # noqa: ANN001
        from logbook.entries.registry import create_draft, register

        entry = register(self.app.store, str(create_draft(self.app.store, spec).id))
        self.post_message(ActionFinished(f"registered {entry.slug}"))
        self.load()


def editor_command(path: Path) -> list[str]:
    """$VISUAL or $EDITOR (with its own arguments), else vi."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return [*shlex.split(editor), str(path)]


def run_editor(path: Path) -> None:
    subprocess.run(editor_command(path), check=False)
