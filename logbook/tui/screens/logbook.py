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
from textual.widgets import Footer, Header, Input, Static

from logbook.db.engine import ChangeWatch
from logbook.entries.listing import (
    SORT_FIELDS, entry_rows, judge_stale, matches_query, newest_ids, parse_query, sorted_rows, stale,
)
from logbook.errors import InputError
from logbook.export.escape import terminal
from logbook.tui.messages import EntriesCounted, EntriesFiltered, EntriesJudged, EntriesLoaded, EntryRegistered
from logbook.tui.screens.base import BaseScreen
from logbook.tui.screens.modals import ErrorScreen, ReviewScreen
from logbook.tui.columns import (
    PADDING, SCROLLBAR, SORT_OF, activity_text, column_widths, effect_text, layout, legend, metric_text, seeds_text,
)
from logbook.tui.widgets import CursorTable, badge, cursor_key, refill_table, retro_badge

PAGE = 40  # rows put in the table at a time; more come as the cursor reaches the end
DEBOUNCE_S = 0.12  # the filter runs once typing pauses this long, not on every keystroke
JUDGED = ("verdict", "state", "effect", "ci_low", "ci_high")  # what a fresh verdict changes in a row
JUDGE_AT_ONCE = 10  # stale verdicts recomputed per batch (in a worker), shown rows first
JUDGE_PAUSE_S = 0.5  # between batches: judging thousands of stale entries never hogs the app
CYCLE = ("id", "title", "state", "effect", "seeds", "activity", "status", "metric")  # what `s` steps through


def subtitle(in_table: int, matching: int, total: int, query: str) -> str:
    """What the list says it shows: the rows in the table of those that match, of all entries."""
    if in_table < matching:
        return f"showing {in_table:,} of {matching:,} entries" + (f" matching “{query}” ({total:,} in all)" if query else "")
    return f"{matching:,} of {total:,} entries" + (f" matching “{query}”" if query else "")


class EntriesTable(CursorTable):
    """The entries: End shows every matching row (they come a page at a time) and goes to the last."""

    def action_cursor_last(self) -> None:
        self.screen.show_every_row()
        super().action_cursor_last()


class LogbookScreen(BaseScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("n", "new_entry", "New"),
        Binding("i", "import_runs", "Import", show=False),
        Binding("Q", "app.queue", "Queue"),
        Binding("space", "mark", "Mark", show=False),
        Binding("c", "compare", "Compare", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []  # every entry, as loaded
        self.loaded = False  # every row has been read once
        self.first_page_of: int | None = None  # the entries in all, while only the first page is read
        self.judged: dict[int, dict[str, Any]] = {}  # fresh verdicts by id, for as long as no run ends
        self.shown: list[dict[str, Any]] = []  # sorted and filtered, for the table
        self.shown_query: str | None = None  # the query ``shown`` answers (None before the first)
        self.shown_generation = -1
        self.query_error: str | None = None
        self.generation = 0  # bumped by every change of rows, sort or filter: older results are stale
        self.filter_timer = None
        self.matching = 0
        self.sort_field, self.sort_key, self.reverse = "id", "id", False
        self.limit = PAGE
        self.columns: list[tuple[str, str, int]] = []
        self.marked: set[int] = set()  # entry ids marked with space, for the compare screen (c)
        self.widths: dict[str, int] = column_widths([])

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: words, tag:rnn, verdict:negative, status:, metric:, trainer:", id="filter")
        yield Static("loading entries…", id="placeholder")
        yield EntriesTable(id="entries", cursor_type="row", zebra_stripes=True)
        yield Static(id="legend", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(EntriesTable).focus()
        self.changes = ChangeWatch(self.app.store)  # not `watch`: Textual widgets have a watch() method
        self.load()
        self.set_interval(self.app.refresh_s, self.load)

    def on_unmount(self) -> None:
        self.changes.close()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        """Read the list's rows, unless nothing was committed since the last read. The first read
        shows the first page (the oldest entries, the default order) before reading them all."""
        store = self.app.store
        if not self.changes.changed():
            return
        try:
            if not self.loaded:
                ids, total = newest_ids(store, PAGE, withdrawn="any", oldest=True)  # withdrawn too: the filter hides them
                self.post_message(EntriesCounted(total))
                first = entry_rows(store, ids=ids)
                if len(first) == total:  # that was every entry
                    self.post_message(EntriesLoaded(first, column_widths(first)))
                    return
                self.post_message(EntriesLoaded(first, column_widths(first), total=total))
            rows = entry_rows(store)
        except Exception:
            self.changes.forget()  # a read that failed is tried again at the next tick
            raise
        self.post_message(EntriesLoaded(rows, column_widths(rows)))

    def on_entries_counted(self, message: EntriesCounted) -> None:
        if not self.loaded:
            self.query_one("#placeholder", Static).update(f"loading {message.count:,} entries…")

    def on_entries_loaded(self, message: EntriesLoaded) -> None:
        if message.total is not None and self.loaded:
            return  # the first page, arriving after every row already did
        rows = [{**r, **{k: self.judged[r["id"]][k] for k in JUDGED}} if self.still_judged(r) else r for r in message.rows]
        self.rows, self.widths = rows, message.widths
        self.first_page_of = message.total  # while only the first page is in: how many entries there are
        if message.total is None and not self.loaded:
            self.loaded = True
        self.query_one("#placeholder", Static).display = False
        self.judge_waiting()
        self.refilter()

    def judge_waiting(self) -> None:
        """Recompute the next few stale verdicts in a worker, the shown rows first."""
        waiting = [r for r in self.rows if stale(r) and not self.still_judged(r)]
        if waiting:
            first = {r["id"] for r in self.shown[: self.limit]}
            waiting.sort(key=lambda r: r["id"] not in first)
            self.judge(waiting[:JUDGE_AT_ONCE])

    def still_judged(self, row: dict[str, Any]) -> bool:
        """Whether a fresh verdict computed earlier still holds (no run of the entry ended since)."""
        judged = self.judged.get(row["id"])
        return judged is not None and judged.get("last_run") == row.get("last_run") and stale(row)

    @work(thread=True, exclusive=True, group="judge", exit_on_error=False, description="judge stale verdicts")
    def judge(self, rows: list[dict[str, Any]]) -> None:
        self.post_message(EntriesJudged(judge_stale(self.app.store, rows, JUDGE_AT_ONCE)))

    def on_entries_judged(self, message: EntriesJudged) -> None:
        self.judged.update(message.rows)
        self.rows = [message.rows.get(r["id"], r) for r in self.rows]
        fresh = column_widths(list(message.rows.values()))
        self.widths = {key: max(width, fresh[key]) for key, width in self.widths.items()}
        self.refilter()
        if message.rows:  # the next few soon, not at the next re-read (an unchanged logbook is not re-read)
            self.set_timer(JUDGE_PAUSE_S, self.judge_waiting)

    def refilter(self) -> None:
        """Sort and filter in a thread worker; a newer call makes the older result stale (dropped)."""
        self.generation += 1
        self.sort_and_filter(self.rows, self.query_one("#filter", Input).value, self.sort_key, self.reverse,
                             self.generation)

    # description: Textual otherwise names a worker by the repr of its arguments, 10,000 rows here
    # (about 25 ms on the UI thread per sort or filter)
    @work(thread=True, exclusive=True, group="filter", exit_on_error=False, description="sort and filter the list")
    def sort_and_filter(self, rows: list[dict[str, Any]], text: str, key: str, reverse: bool, generation: int) -> None:
        try:
            query = parse_query(text)
        except InputError as exc:
            self.post_message(EntriesFiltered(text, [], generation, error=str(exc)))
            return
        chosen = [r for r in rows if matches_query(r, query)]
        self.post_message(EntriesFiltered(text, sorted_rows(chosen, key, reverse), generation))

    def on_entries_filtered(self, message: EntriesFiltered) -> None:
        if message.generation != self.generation:
            return  # the rows, sort or filter changed since this was computed
        self.shown, self.shown_query, self.shown_generation = message.rows, message.query, message.generation
        self.query_error = message.error
        self.show_rows()

    def on_resize(self) -> None:
        if self.loaded:
            self.call_after_refresh(self.show_rows)  # once the table has its new width

    def relayout(self) -> None:
        """Set the columns for the table's width and the sort (only when they change)."""
        table = self.query_one(EntriesTable)
        sort_column = next((c for c, k in SORT_OF.items() if k == self.sort_key), None)
        columns = layout(table.size.width or self.size.width, self.widths, sort_column, self.reverse)
        if columns == self.columns:
            return
        self.columns = columns
        table.clear(columns=True)
        for key, label, width in columns:
            table.add_column(Text(label), key=key, width=width)  # Text: "[interval]" is not markup

    def show_rows(self) -> None:
        """Put the first ``limit`` sorted, filtered rows in the table (no filtering here)."""
        table = self.query_one(EntriesTable)
        keep = cursor_key(table)
        self.relayout()
        query, rows = self.shown_query or "", self.shown
        self.matching = len(rows)
        title_width = next(width for key, _, width in self.columns if key == "title")
        order = [key for key, _, _ in self.columns]
        refill_table(table, ((str(r["id"]), self.cells(r, order, title_width, self.marked)) for r in rows[: self.limit]),
                     keep)
        if self.query_error:
            self.sub_title = self.query_error
        else:
            self.sub_title = subtitle(table.row_count, len(rows), len(self.rows), query)
            if self.first_page_of is not None:
                self.sub_title = f"the first {len(self.rows)} of {self.first_page_of:,} entries; reading the rest…"
        on_screen = {key for key, _, width in self.columns[: self.on_screen_count()]}
        hidden = [key for key in order if key not in on_screen]
        sort_label = f"{next((lbl for key, lbl, _ in self.columns if SORT_OF.get(key) == self.sort_key), self.sort_field)}"
        self.query_one("#legend", Static).update(legend(self.size.width, sort_label, hidden,
                                                        any(r["active"] for r in rows[: self.limit])))

    def on_screen_count(self) -> int:
        """How many columns, from the left, fit the table's width."""
        room, count = (self.query_one(EntriesTable).size.width or self.size.width) - SCROLLBAR, 0
        for _, _, width in self.columns:
            room -= width + PADDING
            if room < 0:
                break
            count += 1
        return count

    @staticmethod
    def cells(r: dict[str, Any], order: list[str], title_width: int, marked: set[int] = frozenset()) -> list[Any]:
        width = title_width - 4 if r.get("retrospective") else title_width
        title = terminal(r["title"])
        title = title if len(title) <= width else title[: width - 1] + "…"
        values = {
            "#": id_cell(r["id"], r["id"] in marked),
            "title": Text.assemble(retro_badge(short=True), " ", title) if r.get("retrospective") else Text(title),
            "state": badge(r["state"]), "effect [interval]": effect_text(r), "seeds": seeds_text(r),
            "last activity": activity_text(r), "status": r["status"], "metric": Text(terminal(metric_text(r))),
            "arms": str(r["arms"]),
        }
        return [values[key] for key in order]

    def action_mark(self) -> None:
        """Mark or unmark the entry under the cursor for the compare screen."""
        table = self.query_one(EntriesTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key
        entry_id = int(key.value)
        self.marked ^= {entry_id}
        table.update_cell(key, "#", id_cell(entry_id, entry_id in self.marked))
        self.notify(f"{len(self.marked)} marked: c compares them" if self.marked else "nothing marked")

    def action_compare(self) -> None:
        """Compare the marked entries (or, with none marked, the arms of the entry under the cursor)."""
        from logbook.tui.screens.compare import CompareScreen

        table = self.query_one(EntriesTable)
        refs = sorted(self.marked)
        if not refs and table.row_count:
            refs = [int(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)]
        if refs:
            self.app.push_screen(CompareScreen([str(r) for r in refs]))

    def show_every_row(self) -> None:
        if self.limit < self.matching:
            self.limit = self.matching
            self.show_rows()

    @on(CursorTable.RowHighlighted, "#entries")
    def load_more(self, event: CursorTable.RowHighlighted) -> None:
        table = self.query_one(EntriesTable)
        if event.cursor_row >= table.row_count - 1 and table.row_count < self.matching:
            self.limit += PAGE
            self.show_rows()

    @on(CursorTable.RowSelected, "#entries")
    def open_entry(self, event: CursorTable.RowSelected) -> None:
        from logbook.tui.screens.entry import EntryScreen

        self.app.push_screen(EntryScreen(int(event.row_key.value)))

    def action_open_entry(self) -> None:
        """Open the entry under the cursor (Enter, or from the command palette)."""
        table = self.query_one(EntriesTable)
        if table.row_count:
            from logbook.tui.screens.entry import EntryScreen

            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
            self.app.push_screen(EntryScreen(int(key)))

    @on(CursorTable.HeaderSelected, "#entries")
    def sort_by_header(self, event: CursorTable.HeaderSelected) -> None:
        key = SORT_OF.get(str(event.column_key.value))
        if key:
            field_name = next(name for name in CYCLE if SORT_FIELDS[name][0] == key)
            self.sort_by(field_name, (not self.reverse) if key == self.sort_key else SORT_FIELDS[field_name][1])

    def sort_by(self, field_name: str, descending: bool) -> None:
        self.sort_field = field_name
        self.sort_key, self.reverse = SORT_FIELDS[field_name][0], descending
        self.refilter()

    def action_sort(self) -> None:
        """The next sort field, in its natural direction; the header shows which (▲ ascending, ▼ descending)."""
        following = CYCLE[(CYCLE.index(self.sort_field) + 1) % len(CYCLE)] if self.sort_field in CYCLE else CYCLE[0]
        self.sort_by(following, SORT_FIELDS[following][1])

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_field, not self.reverse)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self.query_one(EntriesTable).focus()
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
        self.query_one(EntriesTable).focus()

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


def id_cell(entry_id: int, marked: bool) -> Text | str:
    """The first column: the id, with ✓ when the entry is marked for comparing."""
    return Text(f"✓{entry_id}", style="bold reverse") if marked else str(entry_id)


def editor_command(path: Path) -> list[str]:
    """$VISUAL or $EDITOR (with its own arguments), else vi."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return [*shlex.split(editor), str(path)]


def run_editor(path: Path) -> None:
    subprocess.run(editor_command(path), check=False)
