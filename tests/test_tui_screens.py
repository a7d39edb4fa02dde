"""The entry, run and queue screens and their dialogs, driven with Pilot on the real app over a real
logbook file: what a researcher sees at 80×24 and 120×40, and what each action writes."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import EXAMPLE_YAML, link_runs
from tests.test_tui import FIXED_TIME, loaded, logbook_db, make_app, open_entry  # noqa: F401 (logbook_db is a fixture)


def insert_run(db, arm_id: int, seed: int, origin: str, status: str, *, started_at: str | None = None,
               environment: dict | None = None, value: float | None = None) -> int:
    """One run row as a worker leaves it (finished rows are written finished, then chained)."""
    con = sqlite3.connect(db)
    cur = con.execute(
        "INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, started_at, ended_at, final_metrics,"
        " wall_time_s, environment, cancel_requested) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 0)",
        (arm_id, seed, origin, status, FIXED_TIME, started_at, None if status in ("queued", "running") else FIXED_TIME,
         None if value is None else json.dumps({"val_loss": value}), None if status in ("queued", "running") else 3.0,
         None if environment is None else json.dumps(environment)))
    con.commit()
    con.close()
    if status not in ("queued", "running"):
        link_runs(db, [cur.lastrowid])
    return cur.lastrowid


def toasts_of(app, monkeypatch) -> list[str]:
    said: list[str] = []
    monkeypatch.setattr(app, "notify", lambda message, **_: said.append(str(message)))
    return said


async def until(pilot, check, timeout: float = 10.0) -> None:
    """Wait (letting the app's workers run) until ``check()`` holds."""
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        if check():
            return
    raise AssertionError("the app never got there")


async def reads_settle(pilot, calls: list, timeout: float = 10.0) -> int:
    """Wait until no read was added for three refresh ticks (0.6 s); the number of reads then."""
    for _ in range(int(timeout / 0.6)):
        seen = len(calls)
        await pilot.pause(0.6)
        if len(calls) == seen:
            return seen
    raise AssertionError(f"the screen kept reading: {len(calls)} reads")


# ---- the entry screen --------------------------------------------------------------------------

async def test_entry_screen_fits_80_columns_and_opens_at_its_top(logbook_db):
    app = make_app(logbook_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_entry(pilot)
        await pilot.pause(0.2)
        screen = app.screen
        assert screen.query_one("#entry-body").scroll_y == 0  # title and hypothesis on screen, not scrolled past
        card = str(screen.query_one("#card").render())
        assert card.startswith("Extra output gate in the recurrent cell\nAn extra output gate lowers")
        stats = screen.query_one("#stats")
        width = stats.content_size.width
        lines = str(stats.render()).splitlines()
        assert lines and all(len(line) <= width for line in lines), (width, lines)  # nothing wraps
        # one convention: the sentence's change (candidate − baseline) is the stats line's
        sentence = str(screen.query_one("#verdict-panel").render())
        assert "changes val_loss by 0.0009667 relative to baseline (90% CI −0.008469 to 0.0104)" in sentence
        assert "gated − baseline: 0.0009667 [−0.008469, 0.0104]" in str(stats.render())
        for selector in ("#card", "#verdict-panel", "#stats", "#distribution", "#curves"):
            text = str(screen.query_one(selector).render())
            assert not re.search(r"\de[-+]\d", text) and "-0." not in text  # no scientific notation, true minus
        plot = str(screen.query_one("#distribution").render()).splitlines()
        assert "┊" in plot[0] and "░" in plot[0]  # the baseline mean (zero change) and the δ band
        assert "┊ baseline mean 0.5058 · ░ better by less than δ = 0.01" in plot[-1]
        assert max(len(line) for line in plot) >= screen.query_one("#distribution").content_size.width - 10


def test_the_verdict_panel_says_how_many_seeds_would_settle_it_once():
    from logbook.tui.screens.entry import EntryScreen

    sentence = ("The gated arm changes val_loss by −0.002 relative to baseline (90% CI −0.02 to 0.016). Neither an "
                "improvement of δ = 0.01 nor its absence is established: inconclusive (interval straddles δ); "
                "about 14 seeds per arm would likely settle it.")
    verdict = {"verdict": "inconclusive", "interval": "welch", "interval_reason": "planned",
               "comparisons": [{"verdict": "inconclusive", "candidate_name": "gated", "sentence": sentence, "seeds_needed": 14}]}
    text = str(EntryScreen.verdict_text(verdict))
    assert text.count("seeds per arm would") == 1 and "about 14 seeds per arm would likely settle it" in text


async def test_running_runs_show_elapsed_time_and_progress(logbook_db):
    started = (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()
    run_id = insert_run(logbook_db, 1, 9001, "extra", "running", started_at=started)
    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        runs = await open_entry(pilot, rows=13)
        row = [str(cell) for cell in runs.get_row(str(run_id))]
        # baseline's succeeded runs took 12.5 to 17.5 s (15 s on average): about a third is done
        assert row[3] == "added" and row[4] == "running"
        assert re.fullmatch(r"[5-9]s (3[0-9]|[4-5][0-9])%", row[6]), row
        assert re.fullmatch(r"~\d+s left", row[7]), row
        finished = [str(cell) for cell in runs.get_row("1")]
        assert finished[6] == "12s" and finished[3] == "planned"


async def test_the_entry_screen_re_reads_after_a_commit_or_while_runs_are_active(logbook_db, monkeypatch):
    """Its timer re-reads the entry only after something was committed, or while one of its runs
    is queued or running (their times move on without a commit)."""
    from logbook.tui import data
    from logbook.tui.app import LogbookApp

    read = data.entry_view
    calls = []
    monkeypatch.setattr(data, "entry_view", lambda store, entry_id: (calls.append(entry_id), read(store, entry_id))[1])
    app = LogbookApp(logbook_db, refresh_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_entry(pilot)
        idle = await reads_settle(pilot, calls)  # the list below may commit its verdict cache once
        await pilot.pause(1.2)  # six ticks of the timer, every run finished, nothing committed
        assert len(calls) == idle, calls
        run_id = insert_run(logbook_db, 1, 9001, "extra", "queued")  # a commit, and an active run
        await until(pilot, lambda: app.screen.query_one("#runs").row_count == 13)
        await pilot.pause(0.8)
        assert len(calls) >= 4  # the commit's read, then one a tick while the run waits
        con = sqlite3.connect(logbook_db)  # it is cancelled, as a worker leaves it: the entry is idle again
        con.execute("UPDATE run SET status = 'cancelled', ended_at = ? WHERE id = ?", (FIXED_TIME, run_id))
        con.commit()
        con.close()
        link_runs(logbook_db, [run_id])
        runs = app.screen.query_one("#runs")
        await until(pilot, lambda: str(runs.get_row(str(run_id))[4]) == "cancelled")
        idle = await reads_settle(pilot, calls)
        await pilot.pause(1.2)
        assert len(calls) == idle


async def test_the_run_screen_re_reads_an_ended_run_only_after_a_commit(logbook_db, monkeypatch):
    """Its timer re-reads an ended run only after something was committed (its curves and log do
    not change otherwise); a queued or running run is read every tick."""
    from logbook.tui import data
    from logbook.tui.app import LogbookApp
    from logbook.tui.screens.run import RunScreen

    read = data.run_view
    calls = []
    monkeypatch.setattr(data, "run_view", lambda store, run_id: (calls.append(run_id), read(store, run_id))[1])
    waiting = insert_run(logbook_db, 1, 9201, "extra", "queued")
    app = LogbookApp(logbook_db, refresh_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, "#entries", 3)
        app.push_screen(RunScreen(1))
        await until(pilot, lambda: app.screen.status == "succeeded")
        idle = await reads_settle(pilot, calls)  # the list below may commit its verdict cache once
        await pilot.pause(1.2)  # six ticks of the timer, nothing committed
        assert len(calls) == idle, calls
        insert_run(logbook_db, 1, 9202, "extra", "succeeded")  # a commit, to another run
        await until(pilot, lambda: len(calls) > idle)
        idle = await reads_settle(pilot, calls)
        await pilot.pause(1.2)
        assert len(calls) == idle
        app.pop_screen()
        app.push_screen(RunScreen(waiting))
        await until(pilot, lambda: app.screen.status == "queued")
        opened = len(calls)
        await pilot.pause(1.0)
        assert len(calls) - opened >= 3, calls  # about one a tick while the run waits


async def test_a_finished_run_without_a_log_says_no_output(logbook_db):
    from logbook.tui.screens.run import RunScreen

    app = make_app(logbook_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, "#entries", 3)
        app.push_screen(RunScreen(1))
        await until(pilot, lambda: app.screen.last_log is not None)
        assert app.screen.last_log == "no output"


# ---- the environment diff ----------------------------------------------------------------------

async def test_environment_diff_against_a_picked_run_hides_by_design_differences(logbook_db):
    env = {"python": "3.11.7", "host": "lab-gpu-1", "env": {"PYTHONHASHSEED": "101", "OMP_NUM_THREADS": "4"}}
    first = insert_run(logbook_db, 1, 9101, "rerun", "succeeded", environment=env, value=0.5)
    same = insert_run(logbook_db, 1, 9102, "rerun", "succeeded", value=0.5,
                      environment={**env, "env": {**env["env"], "PYTHONHASHSEED": "102"}})
    other = insert_run(logbook_db, 1, 9103, "rerun", "succeeded", value=0.5,
                       environment={**env, "python": "3.12.1", "env": {**env["env"], "PYTHONHASHSEED": "103"}})
    from logbook.tui.screens.run import RunScreen

    app = make_app(logbook_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, "#entries", 3)
        app.push_screen(RunScreen(first))
        await until(pilot, lambda: app.screen.last_log is not None)
        await pilot.press("d")
        await until(pilot, lambda: type(app.screen).__name__ == "PickRunScreen")
        listed = app.screen.query_one("#pick-run")
        labels = [str(listed.get_option_at_index(i).prompt) for i in range(listed.option_count)]
        assert labels[0].startswith(f"run {other} · baseline · seed 9103 · rerun") and len(labels) == 13 + 1
        await pilot.press("down", "enter")  # the second newest: only the seed variable differs
        await until(pilot, lambda: "environment vs" in str(app.screen.query_one("#provenance").render()))
        text = str(app.screen.query_one("#provenance").render())
        assert f"environment vs run {same} (baseline, seed 9102): no differences" in text
        assert "differ by design (set per run by the engine): env.PYTHONHASHSEED '101' ≠ '102'" in text
        await pilot.press("d")  # hide, then compare with the newest
        await until(pilot, lambda: "environment vs" not in str(app.screen.query_one("#provenance").render()))
        await pilot.press("d")
        await until(pilot, lambda: type(app.screen).__name__ == "PickRunScreen")
        await pilot.press("enter")
        await until(pilot, lambda: "environment vs" in str(app.screen.query_one("#provenance").render()))
        text = str(app.screen.query_one("#provenance").render())
        assert f"environment vs run {other} (baseline, seed 9103): 1 difference\n  python: '3.11.7' ≠ '3.12.1'" in text


# ---- the queue screen --------------------------------------------------------------------------

async def test_queue_screen_fits_80_columns_and_cancels_requeues_and_opens(logbook_db, monkeypatch):
    from logbook.engine import queue

    monkeypatch.setattr(queue, "ensure_worker", lambda store, **_: None)  # queue only: no worker in this test
    queued = insert_run(logbook_db, 1, 9201, "extra", "queued")
    running = insert_run(logbook_db, 2, 9202, "planned", "running",
                         started_at=(datetime.now(timezone.utc) - timedelta(seconds=3)).isoformat())
    app = make_app(logbook_db)
    said = toasts_of(app, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, "#entries", 3)
        await pilot.press("Q")
        table = await loaded(pilot, "#active", 3)
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80  # nothing cut, the ETA included
        assert [str(c.label) for c in table.columns.values()][-2:] == ["elapsed", "left"]
        palette = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Cancel runs", "Requeue failed runs", "Open run"} <= palette  # every key's action is in the palette too
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert rows[str(queued)][3:5] == ["added", "queued"] and rows[str(running)][3:5] == ["planned", "running"]
        # elapsed, share done and time left, from the gated arm's succeeded runs (15 s on average)
        assert re.fullmatch(r"\d+s \d+%", rows[str(running)][5]) and re.fullmatch(r"~\d+s", rows[str(running)][6])
        assert rows["11"][4] == "crashed"  # ended runs follow, to requeue or open
        table.move_cursor(row=table.get_row_index(str(queued)))
        await pilot.press("c")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        assert f"run {queued} · extra-output-gate" in str(app.screen.query_one("#confirm-text").render())
        await pilot.press("y")
        await until(pilot, lambda: f"cancelled run {queued}" in said)
        table.move_cursor(row=table.get_row_index("11"))
        await pilot.press("R")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        assert "1 runs" in str(app.screen.query_one("#confirm-text").render())  # the CLI's preview of what runs
        await pilot.press("y")
        await until(pilot, lambda: any(t.startswith("requeued run 11 as run") for t in said))
        await until(pilot, lambda: table.row_count and table.cursor_row < table.row_count
                    and str(table.get_row_at(table.cursor_row)[0]) == "11")  # the cursor stayed on its run
        await pilot.press("o")
        await until(pilot, lambda: type(app.screen).__name__ == "RunScreen")
        assert app.screen.run_id == 11
    con = sqlite3.connect(logbook_db)
    assert con.execute("SELECT status FROM run WHERE id = ?", (queued,)).fetchone() == ("cancelled",)
    assert con.execute("SELECT status, retry_of FROM run WHERE retry_of = 11").fetchone() == ("queued", 11)
    con.close()


# ---- export, amend and new-entry dialogs -------------------------------------------------------

async def test_export_dialog_writes_the_chosen_format_to_the_chosen_folder(logbook_db, tmp_path, monkeypatch):
    from textual.widgets import Input, Select

    app = make_app(logbook_db)
    said = toasts_of(app, monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_entry(pilot)
        await pilot.press("e")
        await until(pilot, lambda: type(app.screen).__name__ == "FormScreen")
        form = app.screen
        assert str(form.query_one("#field-folder", Input).value) == str(logbook_db.parent / "exports")  # as before
        form.query_one("#field-format", Select).value = "json"
        folder = form.query_one("#field-folder", Input)
        folder.value = str(blocker / "out")
        folder.focus()
        await pilot.press("enter")
        await until(pilot, lambda: "Folder: cannot write to" in str(form.query_one("#form-error").render()))
        assert app.screen is form and folder.value == str(blocker / "out")  # the dialog and what was typed stay
        folder.value = str(tmp_path / "written")
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "EntryScreen")
    target = tmp_path / "written" / "extra-output-gate-in-the-recurrent-cell.json"
    assert json.loads(target.read_text())[0]["entry"] == "extra-output-gate-in-the-recurrent-cell"
    assert said == [f"wrote {target} (and 1 more: figures, verdict)"]


async def test_amend_errors_use_the_forms_words_and_keep_what_was_typed(logbook_db):
    from textual.widgets import Input

    app = make_app(logbook_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_entry(pilot)
        await pilot.press("m")
        await until(pilot, lambda: type(app.screen).__name__ == "FormScreen")
        form = app.screen
        await pilot.press(*"colour", "enter", *"0.02", "enter", *"pilot noise", "enter")
        await until(pilot, lambda: str(form.query_one("#form-error").render()).startswith("Field: expected one of"))
        error = str(form.query_one("#form-error").render())
        assert "--" not in error and "got 'colour'" in error
        assert [form.query_one(f"#field-{n}", Input).value for n in ("field", "value", "reason")] == ["colour", "0.02", "pilot noise"]
        assert "Enter: next field, submit on the last   Esc: cancel" in str(form.query(".hint").last().render())
        form.query_one("#field-field", Input).value = "min_effect"
        form.query_one("#field-reason", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "EntryScreen")
    con = sqlite3.connect(logbook_db)
    assert con.execute("SELECT field, new_value, reason FROM amendment").fetchall() == [("min_effect", 0.02, "pilot noise")]
    con.close()


COMMAND_YAML = EXAMPLE_YAML.replace(
    "trainer: seq-gating     # a registered name, module:callable, or a command (below)",
    "trainer:\n  command: python train.py --cell {cell} --seed {seed}\n  metrics:\n    val_loss: '^val_loss: (\\S+)'",
).replace("Extra output gate", "Command gate")


async def test_new_entry_is_reviewed_then_kept_as_draft_or_registered(logbook_db, monkeypatch):
    from textual.widgets import Input

    app = make_app(logbook_db)
    monkeypatch.setattr(app, "edit_file", lambda path: path.write_text(COMMAND_YAML))
    said = toasts_of(app, monkeypatch)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, "#entries", 3)
        await pilot.press("n")
        await until(pilot, lambda: type(app.screen).__name__ == "ReviewScreen")
        review = str(app.screen.query_one("#review-text").render())
        assert "metric val_loss (lower is better) · δ = 0.01 · α = 0.05" in review
        assert "10 seeds per arm, drawn at registration · 2 arms · 20 runs planned" in review
        assert "baseline (baseline): cell='lstm', hidden=64, lr=0.001" in review
        assert "runs: python train.py --cell gated --seed 0" in review
        await pilot.press("d")  # keep as draft: nothing written
        await until(pilot, lambda: any(t.startswith("kept as a draft, nothing registered:") for t in said))
        con = sqlite3.connect(logbook_db)
        assert con.execute("SELECT count(*) FROM hypothesis").fetchone()[0] == 3
        con.close()
        await pilot.press("slash", *"verdict:negative", "enter")  # a filter the new entry does not match
        await until(pilot, lambda: app.screen.filter_settled() and app.screen.query_one("#entries").row_count == 1)
        await pilot.press("n")
        await until(pilot, lambda: type(app.screen).__name__ == "ReviewScreen")
        await pilot.press("r")
        await loaded(pilot, "#entries", 4)
        assert app.screen.query_one("#filter", Input).value == ""
    assert "registered entry 4 (command-gate-in-the-recurrent-cell); the filter was cleared to show it" in said
    con = sqlite3.connect(logbook_db)
    assert con.execute("SELECT status FROM hypothesis WHERE id = 4").fetchone() == ("registered",)
    con.close()


# ---- snapshots at 80×24 and 120×40 -------------------------------------------------------------

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_run(snap_compare, logbook_db, size):
    from logbook.tui.screens.run import RunScreen

    async def run_before(pilot) -> None:
        await loaded(pilot, "#entries", 3)
        pilot.app.push_screen(RunScreen(11))  # the crashed run
        await until(pilot, lambda: pilot.app.screen.last_log is not None)

    assert snap_compare(make_app(logbook_db), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_queue(snap_compare, logbook_db, size):
    insert_run(logbook_db, 1, 9301, "extra", "queued")

    async def run_before(pilot) -> None:
        await loaded(pilot, "#entries", 3)
        await pilot.press("Q")
        await loaded(pilot, "#active", 10)
        pilot.app.screen.query_one("#workers").update("0 worker(s) running")  # the counts line only

    assert snap_compare(make_app(logbook_db), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_amend_with_error(snap_compare, logbook_db, size):
    async def run_before(pilot) -> None:
        await open_entry(pilot)
        await pilot.press("m")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "FormScreen")
        await pilot.press(*"colour", "enter", *"0.02", "enter", *"pilot noise", "enter")
        await until(pilot, lambda: str(pilot.app.screen.query_one("#form-error").render()).startswith("Field:"))

    assert snap_compare(make_app(logbook_db), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_export_dialog(snap_compare, logbook_db, size):
    async def run_before(pilot) -> None:
        await open_entry(pilot)
        await pilot.press("e")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "FormScreen")
        pilot.app.screen.query_one("#field-folder").value = "/tmp/exports"  # not the test's own temporary path

    assert snap_compare(make_app(logbook_db), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_new_entry_review(snap_compare, logbook_db, size):
    app = make_app(logbook_db)
    app.edit_file = lambda path: path.write_text(COMMAND_YAML)

    async def run_before(pilot) -> None:
        await loaded(pilot, "#entries", 3)
        await pilot.press("n")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "ReviewScreen")
        pilot.app.screen.query_one(".hint").update("file: hypothesis.yaml")  # not the test's own temporary path

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_import_dialog(snap_compare, logbook_db, size):
    """The import dialog (`i` on the list): every field of `logbook import` and the preview line, at
    both sizes, before anything is read or written."""
    async def run_before(pilot) -> None:
        await loaded(pilot, "#entries", 3)
        await pilot.press("i")
        await until(pilot, lambda: type(pilot.app.screen).__name__ == "ImportScreen")

    assert snap_compare(make_app(logbook_db), terminal_size=size, run_before=run_before)


def test_last_lines_reads_the_end_of_a_log_as_a_whole_read_would(tmp_path):
    """The run screen's log tail reads only a file's last bytes. It gives the last lines a whole read
    gives, every one complete (none cut at the window's edge, multi-byte characters included), and
    all that were asked for when they fit in the window."""
    import random

    from logbook.tui.data import last_lines

    rng = random.Random(7)
    words = ["loss", "étape", "→", "0.25", "🙂", "step", ""]
    for case in range(200):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randrange(0, 12))) for _ in range(rng.randrange(0, 150))]
        path = tmp_path / f"log{case}.txt"
        path.write_text("\n".join(lines) + rng.choice(["", "\n"]), encoding="utf-8")
        whole = path.read_text(encoding="utf-8").splitlines()
        count, window = rng.randrange(1, 30), rng.choice([100, 300, 1000, 1 << 16])
        shown = last_lines(path, count, window=window)
        wanted = whole[-count:]
        if len("\n".join(wanted).encode()) + 1 < window:
            assert shown == "\n".join(wanted), case
        else:  # fewer lines, but whole ones: the file's last ones
            got = shown.split("\n")
            assert 0 < len(got) <= count and got == whole[-len(got):], case
    progress = tmp_path / "progress.txt"  # one line longer than the window: its end is shown, not nothing
    progress.write_text("".join(f"\r{i:5d}%" for i in range(1000)), encoding="utf-8")
    assert last_lines(progress, 10, window=60).endswith("  999%")
    assert last_lines(tmp_path / "missing.txt", 10) == ""
