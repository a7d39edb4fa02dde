"""Terminal escapes in entry text never reach a terminal or an export.

Entry files refuse control characters now, so the hostile entry here is written straight into
the database with sqlite3, as an entry registered before that check existed would be: a title that
sets the terminal's title and clears the screen, colour codes in the hypothesis, an arm and a tag
with C1 control characters. Every output boundary must show them as visible ``\\xNN`` text:
`show`, `list`, `status` and `verdict` text, `--json` (the text survives, escaped), the terminal
app's list and entry card, and the Markdown and LaTeX exports.
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from logbook.export.escape import markup, md, terminal, tex
from tests.conftest import make_entry

TITLE = "\x1b]0;pwned\x07Gate \x1b[2Jcell"
HYPOTHESIS = "\x1b[31mred\x1b[0m claim\nsecond line"
ARM = "wide\x1b[2J"
TAG = "tag\x9b31m"
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def insert_legacy_entry(db) -> int:
    """A copy of entry 1 with hostile text and the legacy δ = auto, inserted with plain SQL."""
    con = sqlite3.connect(db)
    cols = [r[1] for r in con.execute("PRAGMA table_info(hypothesis)") if r[1] != "id"]
    row = dict(zip(cols, con.execute(f"SELECT {', '.join(cols)} FROM hypothesis WHERE id = 1").fetchone()))
    row.update(slug="legacy-entry", title=TITLE, statement=HYPOTHESIS, min_effect=None, tags=json.dumps([TAG]),
               notes="\x1b[5mblink\x1b[0m", verdict=None, verdict_detail=None)
    entry_id = con.execute(f"INSERT INTO hypothesis ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                           list(row.values())).lastrowid
    arm_cols = [r[1] for r in con.execute("PRAGMA table_info(arm)") if r[1] != "id"]
    for arm in con.execute(f"SELECT {', '.join(arm_cols)} FROM arm WHERE hypothesis_id = 1 ORDER BY id").fetchall():
        arm = dict(zip(arm_cols, arm))
        arm.update(hypothesis_id=entry_id, name=ARM if arm["role"] == "candidate" else arm["name"])
        arm_id = con.execute(f"INSERT INTO arm ({', '.join(arm)}) VALUES ({', '.join('?' * len(arm))})",
                             list(arm.values())).lastrowid
        seeds = json.loads(row["planned_seeds"])
        for i, seed in enumerate(seeds):
            value = 0.5 + 0.01 * i + (0.0 if arm["role"] == "baseline" else 0.002)
            con.execute(
                "INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, ended_at, final_metrics,"
                " wall_time_s, cancel_requested, error_tail) VALUES (?, ?, 'planned', ?, 1, '2026-05-04', '2026-05-04', ?, 2.0, 0, ?)",
                (arm_id, seed, "succeeded" if i else "failed", json.dumps({"val_loss": value}),
                 None if i else "Traceback \x1b]0;owned\x07\x1b[2J boom"))
    con.commit()
    con.close()
    return entry_id


@pytest.fixture
def hostile_db(cli, tmp_path, db_path, fixed_registration):
    make_entry(cli, tmp_path)
    return db_path, insert_legacy_entry(db_path)


def assert_clean(text: str) -> None:
    assert not RAW.search(text), repr(RAW.search(text).group())


def test_the_neutraliser_shows_every_control_character_visibly():
    assert terminal(TITLE) == "\\x1b]0;pwned\\x07Gate \\x1b[2Jcell"
    assert terminal(HYPOTHESIS) == "\\x1b[31mred\\x1b[0m claim\\x0asecond line"
    assert terminal(HYPOTHESIS, multiline=True) == "\\x1b[31mred\\x1b[0m claim\nsecond line"
    assert terminal(TAG) == "tag\\x9b31m" and terminal("\x7f") == "\\x7f" and terminal("é ✓ δ") == "é ✓ δ"
    assert markup("[bold]x\x1b[0m") == "\\[bold]x\\x1b[0m"
    for text in (TITLE, HYPOTHESIS, ARM, TAG):
        assert_clean(md(text))
        assert_clean(tex(text))


def test_show_list_status_and_verdict_text_are_neutralised(cli, hostile_db):
    _, entry_id = hostile_db
    show = cli("show", str(entry_id))
    assert show.code == 0, show.err
    assert_clean(show.out)
    assert "\\x1b]0;pwned\\x07Gate \\x1b[2Jcell" in show.out and ARM.replace("\x1b", "\\x1b") in show.out
    assert "tag\\x9b31m" in show.out
    assert "auto (a legacy default derived from the data judged: exploratory)" in show.out
    listed = cli("list")
    assert listed.code == 0 and TITLE.replace("\x1b", "\\x1b").replace("\x07", "\\x07") in listed.out
    assert_clean(listed.out)
    status = cli("status", str(entry_id))
    assert status.code == 0 and "Traceback \\x1b]0;owned" in status.out
    assert_clean(status.out)
    verdict = cli("verdict", str(entry_id))
    assert verdict.code == 0, verdict.err
    assert "wide\\x1b[2J" in verdict.out
    assert_clean(verdict.out)


def test_json_output_keeps_the_text_and_escapes_it(cli, hostile_db):
    _, entry_id = hostile_db
    result = cli("show", str(entry_id), "--json")
    assert_clean(result.out)
    detail = json.loads(result.out)
    assert detail["title"] == TITLE and detail["tags"] == [TAG] and detail["arms"][1]["name"] == ARM


def test_amending_a_legacy_entry_works_and_its_auto_delta_cannot_be_restored(cli, hostile_db):
    _, entry_id = hostile_db
    ok = cli("amend", str(entry_id), "--field", "title", "--value", "Gate cell", "--reason", "clean the title")
    assert ok.code == 0, ok.err
    assert_clean(ok.out)
    refused = cli("amend", str(entry_id), "--field", "min_effect", "--value", "auto", "--reason", "r")
    assert refused.code == 2 and "circular" in refused.err and len(refused.err.splitlines()) == 1
    bad = cli("amend", str(entry_id), "--field", "notes", "--value", '"a\\e[2Jb"', "--reason", "r")
    assert bad.code == 2 and bad.err.startswith("--value: notes: expected text without control characters")
    assert_clean(bad.err)


@pytest.mark.parametrize("fmt", ["md", "tex"])
def test_exports_neutralise_control_characters(cli, hostile_db, tmp_path, fmt):
    _, entry_id = hostile_db
    out = tmp_path / "export"
    result = cli("export", str(entry_id), "--format", fmt, "--out", out)
    assert result.code == 0, result.err
    files = [p for p in out.rglob(f"*.{fmt}")]
    assert files
    text = "".join(p.read_text(encoding="utf-8") for p in files)
    assert_clean(text)
    figures = list(out.rglob("*.svg"))
    assert figures
    for figure in figures:  # figure text too (raw control characters are not even valid XML)
        assert_clean(figure.read_text(encoding="utf-8"))
    if fmt == "md":
        assert "\\\\x1b\\]0;pwned\\\\x07Gate" in text
    else:
        assert "\\textbackslash{}x1b]0;pwned\\textbackslash{}x07Gate" in text


async def test_terminal_app_list_and_card_neutralise_control_characters(hostile_db):
    from logbook.tui.app import LogbookApp
    from logbook.tui.screens.entry import EntryScreen
    from tests.test_tui import loaded

    db, entry_id = hostile_db
    app = LogbookApp(db, refresh_s=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await loaded(pilot, "#entries", 2)
        cells = [str(cell) for i in range(table.row_count) for cell in table.get_row_at(i)]
        assert any(cell.startswith("\\x1b]0;pwned") for cell in cells)
        for cell in cells:
            assert_clean(cell)
        app.push_screen(EntryScreen(entry_id))
        await loaded(pilot, "#runs", 2)
        card = str(app.screen.query_one("#card").render())
        assert "\\x1b]0;pwned\\x07Gate" in card and "\\x1b[31mred" in card
        assert_clean(card.replace("\n", " "))
        assert_clean(str(app.screen.query_one("#verdict-panel").render()).replace("\n", " "))
        assert_clean(app.screen.title)
        assert_clean(app.export_screenshot())
