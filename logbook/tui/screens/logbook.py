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
from logbook.tui.messages import EntriesFiltered, EntriesLoaded, EntryRegistered
from logbook.tui.screens.base import BaseScreen
from logbook.tui.screens.modals import ErrorScreen, ReviewScreen
from logbook.tui.widgets import badge, number, retro_badge

COLUMNS = {"#": 5, "title": 30, "verdict": 14, "effect [interval]": 26, "seeds": 9, "metric": 14, "arms": 4, "status": 10,
           "last activity": 16}  # fixed widths: the table never re-measures its cells while filtering
TITLE_WIDTH = 30  # so the verdict stays on screen at 80 columns
PAGE = 40  # rows put in the table at a time; more come as the cursor reaches the end
DEBOUNCE_S = 0.12  # the filter runs once typing pauses this long, not on every keystroke
SORTS = {"#": "id", "title": "title", "verdict": "verdict", "effect [interval]": "effect", "last activity": "last_activity",
         "status": "status", "metric": "metric"}


class LogbookScreen(BaseScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("s", "sort", "Sort"),
        Binding("n", "new_entry", "New"),
        Binding("i", "import_runs", "Import", show=False),
        Binding("Q", "app.queue", "Queue"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []  # every entry, as loaded
        self.shown: list[dict[str, Any]] = []  # sorted and filtered, for the table
        self.shown_query: str | None = None  # the query ``shown`` answers (None before the first)
        self.shown_generation = -1
        self.generation = 0  # bumped by every change of rows, sort or filter: older results are stale
        self.filter_timer = None
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
        self.refilter()

    def refilter(self) -> None:
        """Sort and filter in a thread worker; a newer call makes the older result stale (dropped)."""
        self.generation += 1
        self.sort_and_filter(list(self.rows), self.query_one("#filter", Input).value, self.sort_key, self.reverse,
                             self.generation)

    @work(thread=True, exclusive=True, group="filter", exit_on_error=False)
    def sort_and_filter(self, rows: list[dict[str, Any]], query: str, key: str, reverse: bool, generation: int) -> None:
        rows.sort(key=lambda r: (r[key] is None, r[key] if r[key] is not None else 0), reverse=reverse)
        self.post_message(EntriesFiltered(query, [r for r in rows if matches(r, query)], generation))

    def on_entries_filtered(self, message: EntriesFiltered) -> None:
        if message.generation != self.generation:
            return  # the rows, sort or filter changed since this was computed
        self.shown, self.shown_query, self.shown_generation = message.rows, message.query, message.generation
        self.show_rows()

    def show_rows(self) -> None:
        """Put the first ``limit`` sorted, filtered rows in the table (no filtering here)."""
        table = self.query_one(DataTable)
        current = None
        if table.row_count and table.cursor_row < table.row_count:
            current = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        query, rows = self.shown_query or "", self.shown
        self.matching = len(rows)
        table.clear()
        for r in rows[: self.limit]:
            arrow = "↓" if r["goal"] == "minimize" else "↑"
            effect = "–" if r["effect"] is None else f"{number(r['effect'], 3)} [{number(r['ci_low'], 3)}, {number(r['ci_high'], 3)}]"
            seeds = f"{r['done']}/{r['planned']}" + (f" +{r['active']}" if r["active"] else "")
            width = TITLE_WIDTH - 4 if r.get("retrospective") else TITLE_WIDTH
            title = terminal(r["title"])
            title = title if len(title) <= width else title[: width - 1] + "…"
            title_cell = Text.assemble(retro_badge(short=True), " ", title) if r.get("retrospective") else Text(title)
            table.add_row(
                str(r["id"]), title_cell, badge(r["verdict"]), effect, seeds, Text(terminal(f"{r['metric']} {arrow}")),
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
            self.refilter()

    def action_sort(self) -> None:
        order = list(dict.fromkeys(SORTS.values()))
        self.sort_key = order[(order.index(self.sort_key) + 1) % len(order)]
        self.reverse = self.sort_key in ("last_activity", "effect")
        self.notify(f"sorted by {self.sort_key}")
        self.refilter()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self.query_one(DataTable).focus()
        self.limit = PAGE
        self.refilter()

    @on(Input.Changed, "#filter")
    def filter_changed(self) -> None:
        """Each keystroke only restarts the debounce timer; the UI thread never filters."""
        self.limit = PAGE
        self.generation += 1  # what is being computed now answers an older query
        if self.filter_timer is not None:
            self.filter_timer.stop()
        self.filter_timer = self.set_timer(DEBOUNCE_S, self.refilter)

    def filter_settled(self) -> bool:
        """Whether the table shows the current filter's result (for tests and benchmarks)."""
        return self.shown_generation == self.generation and self.shown_query == self.query_one("#filter", Input).value

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one(DataTable).focus()

    def action_import_runs(self) -> None:
        from logbook.tui.screens.importer import ImportScreen

        self.app.push_screen(ImportScreen(), lambda entry_id: self.load() if entry_id else None)

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
        from logbook.tui.data import entry_review

        def answered(answer: str | None) -> None:
            if answer == "register":
                self.register_entry(spec)
            elif answer == "edit":
                self.action_new_entry(path.read_text(encoding="utf-8"))
            else:
                self.notify(f"kept as a draft, nothing registered: {path} (register it with `logbook new {path} --register`)",
                            timeout=10)

        self.app.push_screen(ReviewScreen(entry_review(spec), str(path)), answered)

    @work(thread=True, group="action", exit_on_error=False)
    def register_entry(self, spec) -> None:  # noqa: ANN001
        from logbook.entries.registry import create_draft, register

        entry = register(self.app.store, str(create_draft(self.app.store, spec).id))
        self.post_message(EntryRegistered(entry.id, entry.slug))

    def on_entry_registered(self, message: EntryRegistered) -> None:
        """Show the new entry: an active filter that could hide it is cleared, and a toast says so."""
        cleared = bool(self.query_one("#filter", Input).value)
        self.notify(f"registered entry {message.entry_id} ({message.slug})" + ("; the filter was cleared to show it" if cleared else ""))
        if cleared:
            self.action_clear_filter()
        self.load()


def editor_command(path: Path) -> list[str]:
    """$VISUAL or $EDITOR (with its own arguments), else vi."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return [*shlex.split(editor), str(path)]


def run_editor(path: Path) -> None:
    subprocess.run(editor_command(path), check=False)
