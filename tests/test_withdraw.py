"""Withdrawing an entry: a dated amendment in the hash chain, never a deletion; withdrawn entries
leave the default list and the results of whole-logbook exports, are listed with date and reason,
and are never run or audited again."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import add_runs, link_runs, make_entry

REASON = "registered by mistake while testing the CLI"


@pytest.fixture
def two_entries(cli, tmp_path, db_path, fixed_registration):
    """Entry 1 (to be withdrawn) and entry 2 (kept), both with finished runs on both arms."""
    make_entry(cli, tmp_path, title="Test entry made by mistake", tags="[rnn]")
    add_runs(db_path, "baseline", [0.512, 0.498, 0.505, 0.520, 0.491, 0.509])
    add_runs(db_path, "gated", [0.507, 0.502, 0.499, 0.515, 0.503, 0.511])
    make_entry(cli, tmp_path, title="Cosine schedule", tags="[optim]")
    con = sqlite3.connect(db_path)
    seeds = json.loads(con.execute("SELECT planned_seeds FROM hypothesis WHERE id = 2").fetchone()[0])
    run_ids = []
    for (arm_id,), shift in zip(con.execute("SELECT id FROM arm WHERE hypothesis_id = 2 ORDER BY id").fetchall(), (0.0, -0.1)):
        for i, seed in enumerate(seeds):
            run_ids.append(con.execute(
                "INSERT INTO run (arm_id, seed, seed_origin, status, attempt, queued_at, started_at, ended_at, final_metrics,"
                " wall_time_s, cancel_requested) VALUES (?, ?, 'planned', 'succeeded', 1, '2026-05-04', '2026-05-04',"
                " '2026-05-04', ?, 3.0, 0)", (arm_id, seed, json.dumps({"val_loss": 0.5 + shift + 0.003 * i}))).lastrowid)
    con.commit()
    con.close()
    link_runs(db_path, run_ids)
    return db_path


def test_withdraw_records_a_dated_amendment_in_the_chain(cli, two_entries):
    result = cli("withdraw", "1", "--reason", REASON, "--json")
    assert result.code == 0, result.err
    amendment = json.loads(result.out)
    assert (amendment["field"], amendment["new"], amendment["reason"]) == ("withdrawn", True, REASON)
    assert amendment["at"].endswith("Z")
    con = sqlite3.connect(two_entries)
    assert con.execute("SELECT COUNT(*) FROM hypothesis").fetchone()[0] == 2  # nothing deleted
    kinds = [k for (k,) in con.execute("SELECT kind FROM chain_link WHERE hypothesis_id = 1 ORDER BY seq")]
    assert kinds[0] == "registration" and kinds[-1] == "amendment"
    with pytest.raises(sqlite3.DatabaseError):  # the withdrawal itself cannot be taken back by hand
        con.execute("DELETE FROM amendment WHERE field = 'withdrawn'")
    con.close()
    verified = cli("verify", "1")
    assert verified.code == 0, verified.out + verified.err

    shown = cli("show", "1")
    assert f"WITHDRAWN  at {amendment['at']}: {REASON}" in shown.out
    assert json.loads(cli("show", "1", "--json").out)["withdrawn"] == {"at": amendment["at"], "reason": REASON}
    judged = cli("verdict", "1")
    assert f"WITHDRAWN at {amendment['at']}: {REASON}" in judged.out
    assert json.loads(cli("verdict", "1", "--json").out)["withdrawn"]["reason"] == REASON
    assert "WITHDRAWN" not in cli("show", "2").out


def test_withdrawn_entries_leave_the_default_list(cli, two_entries):
    assert cli("withdraw", "test-entry", "--reason", REASON).code == 0
    listed = cli("list")
    assert "Cosine schedule" in listed.out and "Test entry made by mistake" not in listed.out
    every = cli("list", "--all")
    line = next(line for line in every.out.splitlines() if "Test entry made by mistake" in line)
    assert line.split()[:2] == ["1", "withdrawn"]
    rows = json.loads(cli("list", "--json").out)["entries"]
    assert [r["id"] for r in rows] == [2]
    rows = json.loads(cli("list", "--all", "--json").out)["entries"]
    assert [(r["id"], r["withdrawn"], r["state"]) for r in rows] == [(1, True, "withdrawn"), (2, False, "unjudged")]
    assert rows[0]["withdrawal"]["reason"] == REASON
    assert [r["id"] for r in json.loads(cli("list", "--verdict", "withdrawn", "--json").out)["entries"]] == [1]


def test_withdrawing_twice_a_draft_or_without_a_reason_is_refused(cli, two_entries, tmp_path):
    assert cli("withdraw", "1", "--reason", REASON).code == 0
    again = cli("withdraw", "1", "--reason", "again")
    assert again.code == 2
    assert again.err.startswith("ENTRY: test-entry-made-by-mistake: already withdrawn at ")
    assert again.err.count("\n") == 1
    empty = cli("withdraw", "2", "--reason", "  ")
    assert (empty.code, empty.err) == (2, "--reason: expected a non-empty reason for withdrawing the entry\n")
    draft = tmp_path / "draft.yaml"
    draft.write_text((tmp_path / "entry.yaml").read_text().replace("Cosine schedule", "A draft"))
    assert cli("new", draft).code == 0
    refused = cli("withdraw", "a-draft", "--reason", REASON)
    assert refused.code == 2 and "is a draft; expected a registered entry" in refused.err
    con = sqlite3.connect(two_entries)
    assert con.execute("SELECT COUNT(*) FROM amendment WHERE field = 'withdrawn'").fetchone()[0] == 1
    con.close()


def test_run_and_audit_refuse_a_withdrawn_entry(cli, two_entries):
    assert cli("withdraw", "1", "--reason", REASON).code == 0
    con = sqlite3.connect(two_entries)
    before = con.execute("SELECT COUNT(*) FROM run").fetchone()[0]
    con.close()
    for verb in (["run", "1", "--no-worker", "--yes"], ["audit", "1", "--no-worker", "--yes", "--seeds", "3"]):
        refused = cli(*verb)
        assert refused.code == 2, (verb, refused.err)
        assert "test-entry-made-by-mistake: withdrawn at" in refused.err and REASON in refused.err
        as_json = cli(*verb, "--json")
        assert as_json.code == 2 and json.loads(as_json.err.splitlines()[0])["source"] == "ENTRY"
    con = sqlite3.connect(two_entries)
    assert con.execute("SELECT COUNT(*) FROM run").fetchone()[0] == before  # nothing queued
    assert con.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM confirmed_command").fetchone()[0] == 0
    con.close()


def test_exports_list_withdrawn_entries_apart_from_the_results(cli, two_entries, tmp_path):
    assert cli("withdraw", "1", "--reason", REASON).code == 0
    at = json.loads(cli("show", "1", "--json").out)["withdrawn"]["at"]
    out = tmp_path / "all"
    assert cli("export", "--all", "--out", out).code == 0
    text = (out / "logbook.md").read_text()
    results, withdrawn = text.split("## Withdrawn")
    assert "Test entry made by mistake" not in results
    assert f"- **Test entry made by mistake** (`test-entry-made-by-mistake`), withdrawn at {at}: {REASON}" in withdrawn
    assert "Test entry made by mistake" not in withdrawn.split("## Entries")[1]
    assert not list((out / "figures").glob("test-entry*")) and list((out / "figures").glob("cosine-schedule*"))
    checked = cli("verify", "--export", out / "logbook.md")
    assert checked.code == 0, checked.out + checked.err

    tex = tmp_path / "tex"
    assert cli("export", "--all", "--format", "tex", "--out", tex).code == 0
    appendix = (tex / "appendix.tex").read_text()
    assert "\\subsection*{Withdrawn}" in appendix
    assert appendix.count("Test entry made by mistake") == 1 and REASON in appendix

    table = tmp_path / "json"
    assert cli("export", "--all", "--format", "json", "--out", table).code == 0
    rows = json.loads((table / "logbook.json").read_text())
    assert rows and {r["entry"] for r in rows} == {"cosine-schedule"}
    listed = json.loads((table / "logbook.withdrawn.json").read_text())
    assert [(w["entry"], w["withdrawn_at"], w["reason"]) for w in listed] == [("test-entry-made-by-mistake", at, REASON)]
    checked = cli("verify", "--export", table / "logbook.json")
    assert checked.code == 0, checked.out + checked.err

    single = tmp_path / "single"
    assert cli("export", "1", "--out", single).code == 0
    assert f"**WITHDRAWN** at {at}: {REASON}." in (single / "test-entry-made-by-mistake.md").read_text()
    assert cli("export", "1", "--format", "tex", "--out", single).code == 0
    assert f"\\textbf{{Withdrawn}} at {at}: {REASON}." in (single / "test-entry-made-by-mistake.tex").read_text()


def test_the_app_list_leaves_withdrawn_entries_out_unless_asked(cli, two_entries):
    from logbook.db.engine import open_store
    from logbook.entries.listing import entry_rows, matches

    assert cli("withdraw", "1", "--reason", REASON).code == 0
    store = open_store(two_entries, mode="read")
    try:
        rows = entry_rows(store)
    finally:
        store.dispose()
    assert [(r["id"], r["withdrawn"]) for r in rows] == [(1, True), (2, False)]
    assert [r["id"] for r in rows if matches(r, "")] == [2]
    assert [r["id"] for r in rows if matches(r, "withdrawn:yes")] == [1]
    assert [r["id"] for r in rows if matches(r, "withdrawn:any")] == [1, 2]
    assert [r["id"] for r in rows if matches(r, "withdrawn:any tag:rnn")] == [1]
