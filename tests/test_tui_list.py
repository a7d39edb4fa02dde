"""The logbook list in the terminal app: responsive columns at 80×24 and 120×40, the sort shown in
the header, the seeds legend, the state words shared with the CLI and the entry screen, the cursor
kept by row across refreshes, Home/End, focus, the first paint, help and the command palette; and
the list → entry → run → back path in a real terminal while runs finish."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
import time

import pytest

from tests.conftest import link_runs
from tests.test_tui import FIXED_TIME, Tmux, loaded, logbook_db, make_app, settled  # noqa: F401  (logbook_db: fixture)


def labels(table) -> list[str]:
    return [column.label.plain for column in table.ordered_columns]


def column(table, key: str) -> list[str]:
    return [str(table.get_cell(row, key)).strip() for row in table.rows]


def on_screen(table) -> list[str]:
    """The columns wholly visible without scrolling sideways (cells have one column of padding a side)."""
    room, shown = table.scrollable_content_region.width, []
    for col in table.ordered_columns:
        room -= col.get_render_width(table)
        if room < 0:
            break
        shown.append(col.key.value)
    return shown


def register(cli, tmp_path, title: str) -> None:
    path = tmp_path / "more.yaml"
    path.write_text(textwrap.dedent(f"""\
        title: {title}
        hypothesis: Something else entirely
        metric: val_loss
        goal: minimize
        min_effect: 0.01
        seeds: 5
        trainer: seq-gating
        arms: {{baseline: {{cell: lstm}}, gated: {{cell: gated}}}}
        """))
    assert cli("new", path, "--register").code == 0


def queue_runs(db, entry_id: int, arm: str, n: int, status: str = "queued") -> list[int]:
    con = sqlite3.connect(db)
    arm_id = con.execute("SELECT id FROM arm WHERE hypothesis_id = ? AND name = ?", (entry_id, arm)).fetchone()[0]
    ids = [con.execute("INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, started_at, cancel_requested)"
                       " VALUES (?, ?, 'extra', ?, 1, ?, ?, 0)", (arm_id, 9000 + i, status, FIXED_TIME, FIXED_TIME)).lastrowid
           for i in range(n)]
    con.commit()
    con.close()
    return ids


async def test_columns_fit_80_and_120_and_scroll_sideways(logbook_db):
    app = make_app(logbook_db)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await loaded(pilot, "#entries", 3)
        await settled(pilot)
        assert on_screen(table) == ["#", "title", "state", "effect [interval]", "seeds"]
        assert labels(table)[5:] == ["last activity", "status", "metric", "arms"]  # off screen, to the right
        effects = column(table, "effect [interval]")
        assert effects[:2] == ["-0.000967 [-0.0104, 0.00847]", "0.1 [0.0941, 0.106]"]
        width = table.columns["effect [interval]"].width
        assert all(len(text) <= width for text in effects)  # the interval is never cut
        assert table.columns["title"].width == 23  # the title takes the slack
        legend = str(app.screen.query_one("#legend").render())
        assert legend == "seeds: finished/planned · sorted by # ▲ · ←/→ 4 more columns · ? keys"
        await pilot.press("right", "right", "right")
        assert table.scroll_x > 0  # ←/→ reach the columns that do not fit
        app.screen.load()  # a refresh keeps the sideways scroll
        await pilot.pause(0.5)
        assert table.scroll_x > 0
        await pilot.press("left", "left", "left", "left", "left")
        assert table.scroll_x == 0
        await pilot.resize_terminal(120, 40)  # re-laid out on resize
        await pilot.pause(0.5)
        assert on_screen(table) == ["#", "title", "state", "effect [interval]", "seeds", "last activity", "status"]
        assert table.columns["title"].width == 33
        assert str(app.screen.query_one("#legend").render()).endswith("→ metric, arms · ? keys")


async def test_sort_shows_in_the_header_not_in_a_toast(logbook_db):
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await loaded(pilot, "#entries", 3)
        await settled(pilot)
        assert labels(table)[0] == "# ▲"
        await pilot.press("s")
        await settled(pilot)
        assert labels(table)[:2] == ["#", "title ▲"] and column(table, "title")[0] == "Cosine schedule"
        await pilot.press("s", "s")  # state, then effect (largest first)
        await settled(pilot)
        assert "effect [interval] ▼" in labels(table) and column(table, "#") == ["2", "1", "3"]
        await pilot.press("S")
        await settled(pilot)
        assert "effect [interval] ▲" in labels(table) and column(table, "#") == ["1", "2", "3"]  # no effect: last
        assert "sorted by effect [interval] ▲" in str(app.screen.query_one("#legend").render())
        assert not list(app._notifications)


async def test_seeds_legend_explains_the_plus(logbook_db):
    queue_runs(logbook_db, 2, "gated", 9)
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await loaded(pilot, "#entries", 3)
        await settled(pilot)
        assert column(table, "seeds")[1] == "12/12 +9"
        assert str(app.screen.query_one("#legend").render()).startswith("seeds: finished/planned, +N queued or running · ")


async def test_states_match_the_entry_screen(cli, tmp_path, logbook_db):
    """An entry whose cached verdict is missing is judged in a worker, and then the list says what
    the entry screen says; an entry without results says so on both."""
    from logbook.tui.screens.entry import EntryScreen

    register(cli, tmp_path, "Nothing run yet")
    con = sqlite3.connect(logbook_db)
    con.execute("UPDATE hypothesis SET verdict = NULL, verdict_detail = NULL WHERE id = 1")
    con.commit()
    con.close()
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await loaded(pilot, "#entries", 4)
        deadline = time.monotonic() + 20
        while column(table, "state")[0] != "NEGATIVE" and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert column(table, "state") == ["NEGATIVE", "POSITIVE", "DRAFT", "NO RESULTS"]
        for entry_id, word in ((1, "NEGATIVE"), (4, "NO RESULTS"), (3, "DRAFT")):
            app.push_screen(EntryScreen(entry_id))
            deadline = time.monotonic() + 20  # the entry loads in a worker; a loaded machine is slow
            while time.monotonic() < deadline:
                await pilot.pause(0.1)
                panels = app.screen.query("#verdict-panel")
                if panels and str(panels.first().render()).startswith(f" {word} "):
                    break
            assert str(app.screen.query_one("#verdict-panel").render()).startswith(f" {word} ")
            await pilot.press("escape")
    assert json.loads(cli("list", "--json").out)["entries"][0]["state"] == "negative"  # cached by the worker


async def test_stale_verdicts_are_judged_batch_after_batch_without_a_re_read(logbook_db, monkeypatch):
    """More stale entries than one batch: the next batch follows the last one (after a short pause),
    not the next re-read of the list (which never comes here)."""
    from logbook.tui.screens import logbook as screen_module

    monkeypatch.setattr(screen_module, "JUDGE_AT_ONCE", 1)
    monkeypatch.setattr(screen_module, "JUDGE_PAUSE_S", 0.1)
    con = sqlite3.connect(logbook_db)
    con.execute("UPDATE hypothesis SET verdict = NULL, verdict_detail = NULL WHERE id IN (1, 2)")
    con.commit()
    con.close()
    app = make_app(logbook_db)  # no timed re-reads
    async with app.run_test(size=(120, 40)) as pilot:
        table = await loaded(pilot, "#entries", 3)
        deadline = time.monotonic() + 20
        while column(table, "state")[:2] != ["NEGATIVE", "POSITIVE"] and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert column(table, "state")[:2] == ["NEGATIVE", "POSITIVE"]


async def test_refresh_keeps_the_cursor_on_its_row(cli, tmp_path, logbook_db):
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await loaded(pilot, "#entries", 3)
        await pilot.press("s")  # by title: Cosine, Extra, Idea
        await settled(pilot)
        await pilot.press("down", "down")
        assert column(table, "#")[table.cursor_row] == "3"
        register(cli, tmp_path, "Aardvark first")  # sorts above every row
        app.screen.load()
        await loaded(pilot, "#entries", 4)
        await settled(pilot)
        assert column(table, "#") == ["4", "2", "1", "3"] and column(table, "#")[table.cursor_row] == "3"
        # the queue screen's table too, while runs come and go
        queue_runs(logbook_db, 1, "gated", 3)
        await pilot.press("Q")
        queue = await loaded(pilot, "#active", 3)
        await pilot.press("end")  # the last row (the queue lists the runs that ended last under the active ones)
        last = queue.coordinate_to_cell_key((queue.cursor_row, 0)).row_key.value
        rows = queue.row_count
        assert queue.cursor_row == rows - 1
        queue_runs(logbook_db, 1, "baseline", 2)  # listed before it
        app.screen.load()
        await loaded(pilot, "#active", rows + 2)
        assert queue.coordinate_to_cell_key((queue.cursor_row, 0)).row_key.value == last
        await pilot.press("home")
        assert queue.cursor_row == 0


async def test_home_and_end_move_the_cursor_over_every_page(cli, tmp_path, logbook_db, monkeypatch):
    from logbook.tui.screens import logbook as screen_module

    monkeypatch.setattr(screen_module, "PAGE", 2)  # the list puts rows in two at a time
    app = make_app(logbook_db)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await loaded(pilot, "#entries", 2)
        await settled(pilot)
        assert table.row_count == 2
        await pilot.press("end")
        assert table.row_count == 3 and table.cursor_row == 2  # every row is there, the cursor on the last
        await pilot.press("home")
        assert table.cursor_row == 0 and table.scroll_y == 0


async def test_tab_never_hides_the_focus(logbook_db):
    from textual.widgets import DataTable, Input

    from logbook.tui.screens.entry import EntryScreen

    app = make_app(logbook_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, "#entries", 3)
        for _ in range(3):
            await pilot.press("tab")
            assert isinstance(app.focused, DataTable) and app.focused.id == "entries"
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("tab", "tab")
        assert app.focused.id in ("entries", "filter") and app.focused.region.area > 0
        await pilot.press("escape")
        app.push_screen(EntryScreen(1))
        await loaded(pilot, "#runs", 12)
        for _ in range(3):
            await pilot.press("tab")
            assert app.focused.id == "runs"  # the page itself takes no focus
        await pilot.press("down", "down", "enter")  # keys still reach the runs table
        await pilot.pause(0.5)
        assert type(app.screen).__name__ == "RunScreen"


async def test_first_paint_says_how_many_entries_are_coming(logbook_db, monkeypatch):
    from logbook.tui.screens import logbook as screen_module

    slow = screen_module.entry_rows
    monkeypatch.setattr(screen_module, "entry_rows", lambda store, **kw: (time.sleep(1.0), slow(store, **kw))[1])
    app = make_app(logbook_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.4)
        placeholder = app.screen.query_one("#placeholder")
        assert str(placeholder.render()) == "loading 3 entries…" and placeholder.display
        await loaded(pilot, "#entries", 3)
        assert not placeholder.display


async def test_the_first_page_is_shown_before_every_row_is_read(logbook_db, monkeypatch):
    """The first read is the first page (the default order's oldest entries): it is in the table
    while the full read is still going, and the subtitle says so; then every row replaces it."""
    from logbook.tui.screens import logbook as screen_module

    read = screen_module.entry_rows
    calls = []
    monkeypatch.setattr(screen_module, "PAGE", 2)
    monkeypatch.setattr(screen_module, "entry_rows", lambda store, ids=None: (
        calls.append(ids), ids is None and time.sleep(1.5), read(store, ids=ids))[2])
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await loaded(pilot, "#entries", 2)
        assert calls == [[1, 2], None]  # the first page read, the full read under way
        assert column(table, "#") == ["1", "2"]
        assert app.screen.sub_title == "the first 2 of 3 entries; reading the rest…"
        deadline = time.monotonic() + 10
        while app.screen.sub_title.startswith("the first") and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert app.screen.sub_title == "showing 2 of 3 entries"
        await pilot.press("end")  # every row is there now
        await pilot.pause(0.3)
        assert column(table, "#") == ["1", "2", "3"]


def test_the_subtitle_counts_table_rows_matches_and_entries():
    from logbook.tui.screens.logbook import subtitle

    assert subtitle(3, 3, 3, "") == "3 of 3 entries"
    assert subtitle(40, 10_000, 10_000, "") == "showing 40 of 10,000 entries"
    assert subtitle(12, 12, 10_000, "gate") == "12 of 10,000 entries matching “gate”"
    assert subtitle(40, 1_200, 10_000, "gate") == "showing 40 of 1,200 entries matching “gate” (10,000 in all)"


async def test_an_unchanged_logbook_is_not_read_again(logbook_db, monkeypatch):
    """The list re-reads on its timer only after something was committed to the logbook."""
    from logbook.tui.app import LogbookApp
    from logbook.tui.screens import logbook as screen_module

    read = screen_module.entry_rows
    calls = []
    monkeypatch.setattr(screen_module, "entry_rows", lambda store, ids=None: (calls.append(ids), read(store, ids=ids))[1])
    app = LogbookApp(logbook_db, refresh_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await loaded(pilot, "#entries", 3)
        await pilot.pause(1.2)  # six ticks of the timer
        assert len(calls) == 1, calls  # the first read (3 entries fit its first page), then nothing
        con = sqlite3.connect(logbook_db)
        title = con.execute("SELECT title FROM hypothesis WHERE id = 2").fetchone()[0]
        con.execute("UPDATE hypothesis SET title = 'Renamed while the app was open' WHERE id = 2")
        con.commit()
        con.close()
        deadline = time.monotonic() + 5
        while "Renamed while the app was open" not in column(table, "title") and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert "Renamed while the app was open" in column(table, "title") and title not in column(table, "title")
        assert calls[1:] == [None]  # one full read for the one commit
        await pilot.pause(0.8)
        assert len(calls) == 2


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_help_uses_the_width_and_lists_every_screen(logbook_db, size):
    app = make_app(logbook_db)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot, "#entries", 3)
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        keys = app.screen.query_one("#keys")
        lines = str(keys.render()).splitlines()
        assert max(map(len, lines)) <= keys.content_region.width  # nothing wraps
        text = "\n".join(lines)
        for section in ("Logbook", "Entry", "Run", "Queue", "Everywhere", "Tables", "Filter (/)"):
            assert section in lines
        for entry in ("/ Filter", "s Sort", "n New entry", "Enter open entry", "PgUp PgDn a page up, down",
                      "Home End first, last row", "R Requeue failed runs", "e Export", "d Environment diff", "tag:X tagged X",
                      "? Keys", "q Quit"):
            assert entry in text
        queue = lines.index("Queue")
        assert "Esc Back" in lines[queue + 1]  # the queue screen's own keys
        per_row = max(len(line.split("   ")) for line in lines)
        assert per_row >= (2 if size[0] == 80 else 3)  # the wider terminal, the more columns


async def test_palette_lists_keys_once_and_every_keyed_action(logbook_db):
    from logbook.tui.screens.entry import EntryScreen

    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await loaded(pilot, "#entries", 3)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert titles.count("Keys") == 1
        assert {"Filter", "Sort", "Reverse sort", "Open entry", "New entry", "Import runs", "Queue", "Light or dark"} <= set(titles)
        sort = next(c for c in app.get_system_commands(app.screen) if c.title == "Sort")
        await sort.callback()
        await settled(pilot)
        assert labels(table)[1] == "title ▲"
        opener = next(c for c in app.get_system_commands(app.screen) if c.title == "Open entry")
        await opener.callback()
        await loaded(pilot, "#runs", 1)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Run planned seeds", "Add seeds", "Cancel runs", "Requeue failed runs", "Amend", "Export", "Audit", "Keys",
                "Queue"} <= set(titles) and titles.count("Keys") == 1


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_help(snap_compare, logbook_db, size):
    async def run_before(pilot) -> None:
        await loaded(pilot, "#entries", 3)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

    assert snap_compare(make_app(logbook_db), terminal_size=size, run_before=run_before)


def test_tmux_list_entry_run_and_back_keep_their_rows(cli, tmp_path, logbook_db):
    """In a real terminal with the app's own 2-second refresh: the cursor stays on its entry and its
    run while an entry is added above it and runs are added above the run and finish."""
    con = sqlite3.connect(logbook_db)
    gated = [r for (r,) in con.execute("SELECT run.id FROM run JOIN arm ON arm.id = run.arm_id"
                                       " WHERE arm.hypothesis_id = 1 AND arm.name = 'gated' ORDER BY run.id")]
    con.close()
    term = Tmux(f"{sys.executable} -m logbook --db {logbook_db} tui", (80, 24))
    try:
        assert "NEGATIVE" in term.wait_for("NEGATIVE", 30)
        term.keys("s")  # by title: Cosine, Extra, Idea; the cursor stays on Extra (entry 1)
        assert "title ▲" in term.wait_for("title ▲", 10)
        term.keys("Enter")
        assert "ruled out" in term.wait_for("ruled out", 30)
        term.keys(*["Down"] * 8)  # the runs table: baseline's 6, then gated's; row 8 is gated's third
        register(cli, tmp_path, "Aardvark first")  # the list gets a row above entry 1
        running = queue_runs(logbook_db, 1, "baseline", 3, status="running")  # three rows above the cursor
        time.sleep(3)  # a refresh shows them running
        con = sqlite3.connect(logbook_db)
        con.executemany("UPDATE run SET status = 'succeeded', ended_at = ?, final_metrics = ? WHERE id = ?",
                        [(FIXED_TIME, json.dumps({"val_loss": 0.5}), run_id) for run_id in running])
        con.commit()
        con.close()
        link_runs(logbook_db, running)
        time.sleep(3)  # and another shows them finished
        term.keys("Enter")
        text = term.wait_for(f"run {gated[2]}", 20)
        assert f"run {gated[2]}" in text  # the run the cursor was on, not the one now in its place
        term.keys("Escape", "Escape")
        assert "Aardvark first" in term.wait_for("Aardvark first", 10)
        term.keys("Enter")  # the list's cursor stayed on entry 1 though a row came above it
        assert "ruled out" in term.wait_for("ruled out", 30)
        term.keys("q")
    finally:
        term.close()
