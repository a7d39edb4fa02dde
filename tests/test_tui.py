"""The terminal app: Pilot tests of every screen and the main flows, SVG snapshots at 80×24 and
120×40, and a smoke test of the real app in tmux."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_YAML, add_runs, link_runs, make_entry

FIXED_TIME = "2026-05-04 03:02:01.000000"


def settle_times(db: Path) -> None:
    """Fixed activity times, so screens (and snapshots) do not depend on when the test ran."""
    con = sqlite3.connect(db)
    # registered entries keep their creation time (it is part of their record); runs get fixed times when written
    con.execute("UPDATE hypothesis SET updated_at = ?", (FIXED_TIME,))
    con.execute("UPDATE hypothesis SET created_at = ? WHERE registered_at IS NULL", (FIXED_TIME,))
    con.commit()
    con.close()


@pytest.fixture
def logbook_db(cli, tmp_path, db_path, fixed_registration):
    """Three entries: a negative one with runs (one crashed), a positive one, and a draft."""
    make_entry(cli, tmp_path, title="Extra output gate in the recurrent cell", tags="[rnn]")
    add_runs(db_path, "baseline", [0.512, 0.498, 0.505, 0.520, 0.491, 0.509], at=(FIXED_TIME, FIXED_TIME))
    add_runs(db_path, "gated", [0.507, 0.502, 0.499, 0.515, None, 0.511], ["succeeded"] * 4 + ["crashed", "succeeded"],
             at=(FIXED_TIME, FIXED_TIME))
    make_entry(cli, tmp_path, title="Cosine schedule", tags="[optim]")
    con = sqlite3.connect(db_path)
    arms = con.execute("SELECT id, name FROM arm WHERE hypothesis_id = 2 ORDER BY id").fetchall()
    con.close()
    for (arm_id, name), shift in zip(arms, (0.0, -0.1)):
        con = sqlite3.connect(db_path)
        for i, seed in enumerate(json.loads(con.execute("SELECT planned_seeds FROM hypothesis WHERE id = 2").fetchone()[0])):
            con.execute("INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, started_at, ended_at,"
                        " final_metrics, wall_time_s, cancel_requested) VALUES (?, ?, 'planned', 'succeeded', 1, ?, ?, ?, ?, 3.0, 0)",
                        (arm_id, seed, FIXED_TIME, FIXED_TIME, FIXED_TIME, json.dumps({"val_loss": 0.5 + shift + 0.003 * i})))
        con.commit()
        con.close()
    con = sqlite3.connect(db_path)
    link_runs(db_path, [r[0] for r in con.execute("SELECT run.id FROM run JOIN arm ON arm.id = run.arm_id WHERE hypothesis_id = 2")])
    con.close()
    path = tmp_path / "draft.yaml"
    path.write_text(EXAMPLE_YAML.replace("title: Extra output gate in the recurrent cell", "title: Idea not yet registered"))
    assert cli("new", path).code == 0
    for ref in ("1", "2"):
        assert cli("verdict", ref).code == 0
    settle_times(db_path)
    return db_path


class Tmux:
    """A real terminal running ``command`` (the app), read with capture-pane. When the command
    exits, the pane stays with its last output and the exit status, so a test that fails because
    the app died shows why instead of an empty screen."""

    EXITED = "[the command exited with status"
    GONE = "[tmux could not read the pane:"

    def __init__(self, command: str, size: tuple[int, int]):
        self.tmux = shutil.which("tmux")
        assert self.tmux, "this test needs tmux; `make test` installs it (apt-get install tmux)"
        self.session = f"logbook-{time.monotonic_ns()}"
        shell = f"{command}; echo \"{self.EXITED} $?]\"; sleep 3600"
        subprocess.run([self.tmux, "new-session", "-d", "-s", self.session, "-x", str(size[0]), "-y", str(size[1]), shell],
                       check=True)

    def screen(self) -> str:
        done = subprocess.run([self.tmux, "capture-pane", "-p", "-t", self.session], capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else f"{self.GONE} {done.stderr.strip()}]"

    def flat(self) -> str:
        """The screen as one line of words: panel borders dropped, wrapped sentences joined."""
        return " ".join(self.screen().replace("│", " ").split())

    def wait_for(self, text: str, timeout: float, *, wrapped: bool = False) -> str:
        """The screen once it shows ``text`` (or the timeout passed); ``wrapped``: match across
        line breaks and panel borders, for sentences the app wraps to the terminal's width."""
        read = self.flat if wrapped else self.screen
        deadline = time.monotonic() + timeout
        while (text not in (shown := read()) and self.EXITED not in shown and self.GONE not in shown
               and time.monotonic() < deadline):
            time.sleep(0.2)
        return read()

    def keys(self, *keys: str) -> None:
        subprocess.run([self.tmux, "send-keys", "-t", self.session, *keys], check=True)

    def close(self) -> None:
        subprocess.run([self.tmux, "kill-session", "-t", self.session], capture_output=True)


def make_app(db):
    from logbook.tui.app import LogbookApp

    return LogbookApp(db, refresh_s=3600)  # no timed reloads: tests drive every change


async def loaded(pilot, selector: str, rows: int = 1, timeout: float = 10.0):
    """Wait until a screen's thread worker has filled ``selector`` (a DataTable) with ``rows``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        tables = pilot.app.screen.query(selector)
        if tables and tables.first().row_count >= rows:
            await pilot.pause(0.05)
            return tables.first()
    raise AssertionError(f"{selector} never got {rows} rows")


async def open_entry(pilot, entry_id: int = 1, rows: int = 12):
    """From the loaded logbook list, open entry ``entry_id`` and wait for its ``rows`` runs."""
    from logbook.tui.screens.entry import EntryScreen

    await loaded(pilot, "#entries", 3)
    pilot.app.push_screen(EntryScreen(entry_id))
    return await loaded(pilot, "#runs", rows)


async def settled(pilot, timeout: float = 10.0) -> None:
    """Wait until the logbook screen shows the result of its current sort and filter."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if pilot.app.screen.filter_settled():
            await pilot.pause(0.05)
            return
    raise AssertionError("the filter never settled")


async def test_logbook_screen_lists_filters_sorts_and_opens(logbook_db, monkeypatch):
    from textual.widgets import DataTable

    from logbook.tui.screens import logbook as list_screen

    # A debounce far above the time a keystroke takes even on a loaded machine, so "fewer filters
    # than keystrokes" tests the debounce and not the machine's speed.
    monkeypatch.setattr(list_screen, "DEBOUNCE_S", 1.0)
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await loaded(pilot, "#entries", 3)
        titles = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert titles == ["Extra output gate in the recurre…", "Cosine schedule", "Idea not yet registered"]
        verdicts = [str(table.get_row_at(i)[2]).strip() for i in range(3)]
        assert verdicts == ["NEGATIVE", "POSITIVE", "DRAFT"]
        assert str(table.get_row_at(0)[4]) == "12/12"  # finished of planned seeds
        screen = app.screen
        renders = []
        screen.show_rows = (lambda show: lambda: (renders.append(screen.shown_query), show()))(screen.show_rows)
        await pilot.press("slash", *"verdict:positive")
        await settled(pilot)
        assert [str(table.get_row_at(i)[1]) for i in range(table.row_count)] == ["Cosine schedule"]
        # Debounced (fewer filters than keystrokes) and never stale: each shown result answers a
        # longer prefix of what was typed than the one before, and the last answers all of it.
        assert renders[-1] == "verdict:positive" and len(renders) < len("verdict:positive")
        assert all("verdict:positive".startswith(q) and len(q) < len(n) for q, n in zip(renders, renders[1:]))
        await pilot.press("escape")
        await settled(pilot)
        assert table.row_count == 3
        await pilot.press("slash", *"tag:rnn", "enter")  # the draft is tagged rnn too
        await settled(pilot)
        assert table.row_count == 2 and isinstance(app.focused, DataTable)
        before = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        await pilot.press("escape", "s")  # sort by title
        await settled(pilot)
        assert [str(table.get_row_at(i)[1]) for i in range(3)][0] == "Cosine schedule"
        assert table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value == before  # the cursor stays on its entry
        await pilot.press("home", "enter")  # Home: the first row
        await loaded(pilot, "#runs", 12)
        assert type(app.screen).__name__ == "EntryScreen" and app.screen.entry_id == 2


async def test_entry_screen_shows_card_verdict_distribution_and_runs(logbook_db):
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await open_entry(pilot)
        screen = app.screen
        card = str(screen.query_one("#card").render())
        assert "registered 2026-05-04T03:02:01Z at outside git" in card and "δ = 0.01" in card
        verdict = str(screen.query_one("#verdict-panel").render())
        assert "NEGATIVE" in verdict and "Improvements of δ = 0.01 or more are ruled out" in verdict
        distribution = str(screen.query_one("#distribution").render())
        assert "n=6" in distribution and "n=5 ✗1" in distribution  # the crashed seed is counted, not dropped
        assert "baseline" in str(screen.query_one("#stats").render())
        curves = str(screen.query_one("#curves").render())
        assert "mean loss over seeds" in curves
        assert "[0.382, 0.385]" in curves  # baseline's seeds at the last step: 1/3 + value/10, lowest and highest
        assert "no audit yet" in str(screen.query_one("#audits").render())
        statuses = [str(runs.get_row_at(i)[4]) for i in range(runs.row_count)]
        assert statuses.count("crashed") == 1
        runs.move_cursor(row=0)
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert type(app.screen).__name__ == "RunScreen"
        summary = str(app.screen.query_one("#summary").render())
        assert "succeeded" in summary and "val_loss = 0.512" in summary
        await pilot.press("d")  # pick the run to compare with
        await pilot.pause(0.5)
        assert type(app.screen).__name__ == "PickRunScreen"
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert "environment vs run" in str(app.screen.query_one("#provenance").render())
        await pilot.press("escape", "escape")
        assert type(app.screen).__name__ == "LogbookScreen"


async def test_entry_card_says_tampered_when_the_record_differs(logbook_db):
    con = sqlite3.connect(logbook_db)
    con.execute("UPDATE hypothesis SET min_effect = 0.5 WHERE id = 1")  # an amendable column, changed without an amendment
    con.commit()
    con.close()
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_entry(pilot)
        card = str(app.screen.query_one("#card").render())
        assert "TAMPERED" in card and "verified" not in card
        assert "hypothesis 1: min_effect: changed" in card


async def test_entry_actions_queue_cancel_and_amend(logbook_db, monkeypatch):
    from logbook.engine import queue
    monkeypatch.setattr(queue, "ensure_worker", lambda store, **_: None)  # queue only: no worker in this test
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_entry(pilot)
        await pilot.press("plus")
        await pilot.press(*"2", "enter")
        await pilot.pause(0.5)
        assert type(app.screen).__name__ == "ConfirmScreen"  # what would run is shown before anything is queued
        assert "4 runs" in str(app.screen.query_one("#confirm-text").render())
        await pilot.press("y")
        await loaded(pilot, "#runs", 16)
        await pilot.press("c")
        await pilot.pause(0.5)
        await pilot.press("m")
        await pilot.press(*"min_effect", "enter", *"0.02", "enter", *"pilot noise", "enter")
        await pilot.pause(0.8)
    con = sqlite3.connect(logbook_db)
    assert con.execute("SELECT seed_origin, status, count(*) FROM run WHERE status = 'cancelled' GROUP BY 1, 2").fetchall() == [("extra", "cancelled", 4)]
    assert con.execute("SELECT field, new_value, reason FROM amendment").fetchall() == [("min_effect", 0.02, "pilot noise")]
    con.close()


async def test_errors_reach_one_modal(logbook_db):
    from logbook.tui.screens.entry import EntryScreen

    app = make_app(logbook_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, "#entries", 3)
        app.push_screen(EntryScreen(3))  # a draft cannot run
        await pilot.pause(0.5)
        await pilot.press("r")
        await pilot.pause(0.8)
        assert type(app.screen).__name__ == "ErrorScreen"
        assert "is a draft; expected a registered entry" in str(app.screen.query_one("#error-text").render())
        await pilot.press("escape")
        assert type(app.screen).__name__ == "EntryScreen"


async def test_new_entry_is_validated_in_place_and_written_only_when_valid(logbook_db, monkeypatch):
    edits = iter([EXAMPLE_YAML.replace("goal: minimize", "goal: lower"), EXAMPLE_YAML.replace("Extra output gate", "Brand new gate")])
    app = make_app(logbook_db)
    monkeypatch.setattr(app, "edit_file", lambda path: path.write_text(next(edits)))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, "#entries", 3)
        await pilot.press("n")
        await pilot.pause(0.3)
        assert type(app.screen).__name__ == "ErrorScreen"
        assert "goal: expected minimize or maximize, got 'lower'" in str(app.screen.query_one("#error-text").render())
        con = sqlite3.connect(logbook_db)
        assert con.execute("SELECT count(*) FROM hypothesis").fetchone()[0] == 3
        con.close()
        await pilot.press("enter")  # edit again
        await pilot.pause(0.3)
        assert type(app.screen).__name__ == "ReviewScreen"  # the valid file is shown before it is registered
        await pilot.press("r")
        await loaded(pilot, "#entries", 4)
    con = sqlite3.connect(logbook_db)
    assert con.execute("SELECT title, status FROM hypothesis WHERE id = 4").fetchone() == ("Brand new gate in the recurrent cell", "registered")
    con.close()


async def test_queue_screen_help_and_theme(logbook_db):
    app = make_app(logbook_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, "#entries", 3)
        await pilot.press("Q")
        await pilot.pause(0.5)
        assert type(app.screen).__name__ == "QueueScreen"
        assert "0 worker(s) running" in str(app.screen.query_one("#workers").render())
        await pilot.press("escape", "question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        dark = app.current_theme.dark
        await pilot.press("t")
        assert app.current_theme.dark is not dark
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Queue", "Keys", "New entry"} <= set(commands)


def _snapshot_run_before(selector: str, rows: int, screen=None):
    async def run_before(pilot) -> None:
        await loaded(pilot, "#entries", 3)
        if screen is not None:
            pilot.app.push_screen(screen())
            await loaded(pilot, selector, rows)
    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_logbook(snap_compare, logbook_db, size):
    assert snap_compare(make_app(logbook_db), terminal_size=size, run_before=_snapshot_run_before("#entries", 3))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_entry(snap_compare, logbook_db, size):
    from logbook.tui.screens.entry import EntryScreen

    assert snap_compare(make_app(logbook_db), terminal_size=size,
                        run_before=_snapshot_run_before("#runs", 12, lambda: EntryScreen(1)))


def test_tmux_smoke(logbook_db, tmp_path):
    """The real app in a real terminal: the badge on the list, then the entry screen."""
    term = Tmux(f"{sys.executable} -m logbook --db {logbook_db} tui", (80, 24))
    try:
        text = term.wait_for("NEGATIVE", 30)
        assert "Extra output gate" in text and "NEGATIVE" in text and "POSITIVE" in text
        term.keys("Enter")
        text = term.wait_for("ruled out", 30)
        assert "Improvements of δ = 0.01" in text and "esc Back" in text
        term.keys("q")
    finally:
        term.close()


async def test_entry_screen_shows_an_audit_beside_the_original(logbook_db):
    from logbook.tui.screens.entry import EntryScreen

    original = {"verdict": "positive", "comparisons": [{"candidate_name": "gated", "verdict": "positive", "effect": 0.03,
                                                        "ci_low": 0.01, "ci_high": 0.05}]}
    audited = {"comparisons": [{"candidate_name": "gated", "verdict": "negative", "effect": 0.001, "ci_low": -0.004,
                                "ci_high": 0.006}]}
    con = sqlite3.connect(logbook_db)
    con.execute("INSERT INTO audit (hypothesis_id, created_at, n_seeds, commitment, status, outcome, original_verdict,"
                " audit_verdict) VALUES (1, ?, 12, 'c0ffee', 'concluded', 'refuted', ?, ?)",
                (FIXED_TIME, json.dumps(original), json.dumps(audited)))
    con.commit()
    con.close()
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_entry(pilot)
        text = str(app.screen.query_one("#audits").render())
        assert "audit 1: refuted · 12 seeds per arm" in text
        # lower is better here: an improvement of 0.03 is a change of −0.03, as in the verdict's sentence
        assert "gated: original positive −0.03 [−0.05, −0.01] · audit negative −0.001 [−0.006, 0.004]" in text


def test_demo_opens_the_app_in_a_terminal(tmp_path):
    db = tmp_path / "demo.db"
    term = Tmux(f"{sys.executable} -m logbook demo --tiny --demo-db {db}", (100, 30))
    try:
        # the verdict arrives live, in a wrapped sentence (a bound, not a wait: a loaded machine is slow)
        text = term.wait_for("ruled out", 240, wrapped=True)
        assert "Extra output gate in the recurrent cell, demo" in text and "ruled out" in text, text
        term.keys("q")
    finally:
        term.close()
    con = sqlite3.connect(db)
    # the gated-RNN entry's own runs (2 arms x 5 seeds); the demo's variance-study entry queues more runs beside them
    entry_runs = ("SELECT count(*) FROM run JOIN arm ON arm.id = run.arm_id JOIN hypothesis ON hypothesis.id = arm.hypothesis_id"
                  " WHERE hypothesis.title = 'Extra output gate in the recurrent cell, demo' AND run.status = ?")
    deadline = time.monotonic() + 180  # the detached worker finishes the runs after the app closed
    while con.execute(entry_runs, ("succeeded",)).fetchone()[0] < 10 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert con.execute(entry_runs, ("succeeded",)).fetchone()[0] == 10, con.execute(
        "SELECT status, count(*) FROM run GROUP BY status").fetchall()
    for (pid,) in con.execute("SELECT pid FROM worker WHERE status = 'running'"):
        subprocess.run(["kill", str(pid)], capture_output=True)
    con.close()
