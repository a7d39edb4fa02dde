"""`logbook list` with the terminal app's filter and sort grammar (entries/listing.py), and the one
vocabulary of states (entries/states.py) shared by `list`, `show`, `status` and the app."""

from __future__ import annotations

import json
import sqlite3
import textwrap

import pytest

from logbook.entries.listing import parse_query, parse_sort
from logbook.errors import InputError
from tests.test_tui import logbook_db  # noqa: F401  (a fixture: negative entry 1, positive entry 2, draft 3)


@pytest.fixture
def listed_db(cli, tmp_path, logbook_db):  # noqa: F811
    """The app's three entries and a fourth, registered without any run, whose hypothesis, notes
    and arm names are its own."""
    path = tmp_path / "warmup.yaml"
    path.write_text(textwrap.dedent("""\
        title: Longer warmup
        hypothesis: A longer learning-rate warmup stabilises transformer pretraining
        notes: suggested after the March divergence postmortem
        metric: accuracy
        goal: maximize
        min_effect: 0.02
        seeds: 5
        trainer: {command: "python train.py --seed {seed}", metrics: {accuracy: "^acc: (\\\\S+)"}}
        arms:
          shortwarm: {warmup: 100}
          longwarm: {warmup: 2000}
        tags: [transformer]
        """))
    assert cli("new", path, "--register").code == 0
    return logbook_db


def ids(cli, *args: str) -> list[int]:
    result = cli("list", *args, "--json")
    assert result.code == 0, result.err
    return [row["id"] for row in json.loads(result.out)["entries"]]


def test_list_states_use_one_vocabulary(cli, listed_db):
    rows = {r["id"]: r for r in json.loads(cli("list", "--json").out)["entries"]}
    assert {i: r["state"] for i, r in rows.items()} == {1: "negative", 2: "positive", 3: "draft", 4: "no results"}
    assert rows[1]["verdict"] == "negative" and rows[4]["verdict"] is None  # the cached verdict, as before
    assert (rows[1]["done"], rows[1]["planned"], rows[1]["runs"]) == (12, 12, {"crashed": 1, "succeeded": 11})
    assert "haystack" not in rows[1]
    text = cli("list").out.splitlines()
    assert text[0].split()[:3] == ["id", "state", "status"]
    assert "no results" in text[4] and "Longer warmup" in text[4]
    # `show` and `status` say the same words as the list
    assert "state      : negative (status registered)" in cli("show", "1").out
    assert json.loads(cli("show", "4", "--json").out)["state"] == "no results"
    assert json.loads(cli("show", "3", "--json").out)["state"] == "draft"
    assert cli("status", "2").out.splitlines()[0] == "2: positive"
    assert json.loads(cli("status", "4", "--json").out)["state"] == "no results"


def test_list_filters_with_the_app_grammar(cli, listed_db):
    assert ids(cli, "--verdict", "negative") == [1]
    assert ids(cli, "--verdict", "negative", "--verdict", "positive") == [1, 2]  # repeated: any of them
    assert ids(cli, "--verdict", "no-results") == ids(cli, "--verdict", "no results") == [4]
    assert ids(cli, "--tag", "rnn") == [1, 3]
    assert ids(cli, "--tag", "rnn", "--tag", "RNN", "--status", "draft") == [3]
    assert ids(cli, "--status", "registered") == [1, 2, 4]
    # plain words also match the hypothesis, the notes and arm names, all words must match
    assert ids(cli, "--search", "stabilises") == [4]
    assert ids(cli, "--search", "postmortem") == [4]
    assert ids(cli, "--search", "longwarm") == [4]
    assert ids(cli, "--search", "schedule validation") == [2]  # a title's "schedule" and its hypothesis's "validation"
    assert ids(cli, "--search", "metric:accuracy") == [4]
    assert ids(cli, "--search", "trainer:command") == [4]
    assert ids(cli, "--search", "trainer:seq-gating tag:rnn verdict:negative|draft") == [1, 3]
    assert ids(cli, "--search", "tag:optim", "--verdict", "negative") == []
    assert cli("list", "--search", "nothing-like-this").out == "no entry matches\n"


def test_list_sorts_and_limits(cli, listed_db):
    assert ids(cli) == [1, 2, 3, 4]
    assert ids(cli, "--sort", "title") == [2, 1, 3, 4]  # Cosine, Extra, Idea, Longer
    assert ids(cli, "--sort", "title:desc") == [4, 3, 1, 2]
    # effect starts descending; entries without an effect come last in either direction
    assert ids(cli, "--sort", "effect") == [2, 1, 3, 4]
    assert ids(cli, "--sort", "effect:asc") == [1, 2, 3, 4]
    assert ids(cli, "--sort", "seeds:asc", "--limit", "2") == [3, 4]  # none finished of 20 and of 10: the id breaks the tie
    assert ids(cli, "--sort", "id:desc", "--limit", "1") == [4]


@pytest.mark.parametrize(("args", "line"), [
    (("--verdict", "maybe"), "--verdict: verdict: 'maybe' is not a state; expected one of draft, no-results, unjudged, "
                             "positive, negative, inconclusive, withdrawn"),
    (("--status", "done"), "--status: status: 'done' is not an entry status; expected one of draft, registered, "
                           "running, concluded"),
    (("--search", "gate verdict:"), "--search: verdict: expected a value after 'verdict:' (e.g. verdict:negative)"),
    (("--sort", "colour"), "--sort: FIELD: 'colour' is not a sort field; expected one of activity, arms, effect, id, "
                           "last_activity, metric, seeds, state, status, title, verdict (optionally followed by :asc or :desc)"),
    (("--sort", "effect:up"), "--sort: direction: 'up' is not a direction; expected asc or desc after 'effect:'"),
    (("--tag", " "), "--tag: tag: expected a tag name, got an empty value"),
])
def test_list_refuses_bad_values_in_one_line(cli, listed_db, args, line):
    result = cli("list", *args)
    assert (result.code, result.out, result.err) == (2, "", line + "\n")
    as_json = cli("list", *args, "--json")
    assert as_json.code == 2 and as_json.out == ""
    error = json.loads(as_json.err)
    assert error["error"] == line and error["source"] == line.split(": ")[0] and error["field"] == line.split(": ")[1]


def test_bad_values_are_refused_before_the_logbook_is_opened(cli, tmp_path):
    result = cli("--db", tmp_path / "nowhere" / "logbook.db", "list", "--verdict", "maybe")
    assert result.code == 2 and result.err.startswith("--verdict: verdict:")
    assert not (tmp_path / "nowhere").exists()


def test_withdrawn_entries_are_hidden_unless_asked_for(cli, listed_db, monkeypatch):
    """The hook `withdraw` fills: a row's ``withdrawn`` field (state "withdrawn")."""
    from logbook.entries import listing

    original = listing._row

    def withdraw_two(*args):
        row = original(*args)
        if row["id"] == 2:
            row = {**row, "withdrawn": True, "state": "withdrawn"}
        return row

    monkeypatch.setattr(listing, "_row", withdraw_two)
    assert ids(cli) == [1, 3, 4]
    assert ids(cli, "--all") == [1, 2, 3, 4]
    assert ids(cli, "--search", "withdrawn:yes") == ids(cli, "--verdict", "withdrawn") == [2]
    assert ids(cli, "--search", "withdrawn:any tag:optim") == [2]


def test_unjudged_is_said_until_a_verdict_is_computed(cli, listed_db):
    con = sqlite3.connect(listed_db)
    con.execute("UPDATE hypothesis SET verdict = NULL, verdict_detail = NULL WHERE id = 1")
    con.commit()
    con.close()
    assert ids(cli, "--verdict", "unjudged") == [1]
    assert cli("verdict", "1").code == 0
    assert ids(cli, "--verdict", "unjudged") == []


def test_query_grammar_in_unit():
    query = parse_query("Gate  tag:RNN verdict:no-results|negative status:draft")
    assert query.words == ("gate",)
    assert query.conditions == (("tag", "rnn"), ("verdict", "no results|negative"), ("status", "draft"))
    assert query.withdrawn == "no" and parse_query("verdict:withdrawn").withdrawn == "any"
    assert parse_query("loss:0.3 http://x").words == ("loss:0.3", "http://x")  # unknown keys are plain words
    assert parse_sort("activity") == ("last_activity", True) and parse_sort("EFFECT:asc") == ("effect", False)
    with pytest.raises(InputError, match="filter: withdrawn: expected one of yes, no, any, got 'maybe'"):
        parse_query("withdrawn:maybe")


def listed_ids(out: str) -> list[int]:
    """The ids of the text list's rows (not its header or its closing note)."""
    return [int(line.split()[0]) for line in out.splitlines()[1:] if line.split()[0].isdigit()]


def test_list_prints_a_page_and_says_what_it_left_out(cli, listed_db, monkeypatch):
    """Without --limit the text list prints a page: the newest entries in the default order, the
    first ones in any other; --limit 0 prints all, and --json always lists every entry."""
    from logbook.cli import entries

    monkeypatch.setattr(entries, "LIST_PAGE", 2)
    out = cli("list").out
    assert listed_ids(out) == [3, 4]
    assert out.splitlines()[-1] == "… 2 older entries not shown: use --limit N, or --limit 0 for all"
    out = cli("list", "--sort", "id:desc").out
    assert listed_ids(out) == [4, 3] and out.splitlines()[-1].startswith("… 2 more entries not shown")
    assert listed_ids(cli("list", "--sort", "effect").out) == [2, 1]  # a filtered path: every row is read, then paged
    out = cli("list", "--verdict", "negative", "--verdict", "positive").out
    assert listed_ids(out) == [1, 2] and "not shown" not in out
    out = cli("list", "--limit", "0").out
    assert listed_ids(out) == [1, 2, 3, 4] and "not shown" not in out
    assert listed_ids(cli("list", "--limit", "3").out) == [1, 2, 3]
    assert ids(cli) == [1, 2, 3, 4]
    # a withdrawn entry is left out of the page and of the count, unless asked for
    assert cli("withdraw", "4", "--reason", "a duplicate").code == 0
    out = cli("list").out
    assert listed_ids(out) == [2, 3] and out.splitlines()[-1].startswith("… 1 older entries not shown")
    assert listed_ids(cli("list", "--all").out) == [3, 4]
    assert listed_ids(cli("list", "--search", "withdrawn:yes").out) == [4]


def test_rows_of_some_entries_are_those_of_the_full_list(listed_db):
    """entry_rows(ids=...) reads only those entries, with the same counts, state and haystack."""
    from logbook.db.engine import open_store
    from logbook.entries.listing import entry_rows, newest_ids

    store = open_store(listed_db, mode="read")
    try:
        every = {row["id"]: row for row in entry_rows(store, run_counts=True)}
        some = entry_rows(store, run_counts=True, ids=[1, 4])
        assert [row["id"] for row in some] == [1, 4]
        assert all(row == every[row["id"]] for row in some)
        assert newest_ids(store, 2) == ([3, 4], 4)
        assert newest_ids(store, 2, withdrawn="yes") == ([], 0)
    finally:
        store.dispose()
