"""The logbook list as plain data, and the one filter and sort grammar the terminal app's `/`
filter and `logbook list` share.

Rows come from a few grouped queries and carry the cached verdict, so the list stays fast with
tens of thousands of entries. A query is words and ``key:value`` pairs, all of which must hold:

- a plain word matches, case-insensitively, anywhere in the title, slug, metric, hypothesis text,
  notes, arm names, tags or trainer;
- ``tag:X`` an entry tagged X; ``verdict:X`` an entry in state X, ``verdict:X|Y`` in either (the
  words of ``entries/states.py``: positive, negative, inconclusive, unjudged, "no results"
  written ``no-results``, draft, withdrawn); ``status:X`` its stored status (draft, registered,
  running, concluded);
  ``metric:X`` its metric; ``trainer:X`` its trainer's name (``command`` for a command,
  ``none`` for imported results);
- ``withdrawn:yes`` shows only withdrawn entries, ``withdrawn:any`` every entry; without it
  withdrawn entries are hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from logbook.db import reads
from logbook.entries.states import STATES, entry_state
from logbook.errors import InputError

if TYPE_CHECKING:  # a Store, or the plain read-only db.reads.Reader of `logbook list` (no SQLAlchemy)
    from logbook.db.engine import Store

KEYS = ("tag", "verdict", "status", "metric", "trainer", "withdrawn")
ENTRY_STATUSES = ("draft", "registered", "running", "concluded")
WITHDRAWN_VALUES = ("yes", "no", "any")

# Sort fields: the row key each sorts by, and the direction it starts in (newest or largest first
# where that is what people look for).
SORT_FIELDS: dict[str, tuple[str, bool]] = {
    "id": ("id", False), "title": ("title", False), "state": ("state", False), "verdict": ("state", False),
    "effect": ("effect", True), "seeds": ("done", True), "metric": ("metric", False), "arms": ("arms", False),
    "status": ("status", False), "activity": ("last_activity", True), "last_activity": ("last_activity", True),
}


def state_word(value: str) -> str:
    """A state as typed in a query (``no-results``) to the word used everywhere (``no results``)."""
    return value.replace("-", " ")


def entry_rows(store: Store, *, run_counts: bool = False, ids: list[int] | None = None) -> list[dict[str, Any]]:
    """One row per entry for the list: counts, best effect and interval, state, and ``haystack``,
    the lower-cased text plain words are looked for in. ``run_counts`` adds ``runs``, the seeds
    per run state (their latest attempt), which `logbook list --json` prints and the app does not
    need. ``ids`` restricts the rows (and every query behind them) to those entries. The SQL is
    ``db.reads.entry_list``: a few grouped queries, plain columns (no ORM objects), times and the
    trainer's name formatted by SQLite."""
    with store.connection() as conn:
        entries, arm_names, per_entry = reads.entry_list(conn, ids)
        counts = reads.run_counts(conn, ids) if run_counts else {}
        withdrawn = reads.withdrawals(conn, ids)
    rows = [_row(e, arm_names.get(e[0], []), *per_entry.get(e[0], (0, 0, None)), withdrawn.get(e[0])) for e in entries]
    if run_counts:
        rows = [{**row, "runs": dict(sorted(counts.get(row["id"], {}).items()))} for row in rows]
    return rows


def newest_ids(store: Store, count: int, *, withdrawn: str = "no", oldest: bool = False) -> tuple[list[int], int]:
    """The ids of the ``count`` newest entries shown under ``withdrawn`` (``no``, ``yes``, ``any``,
    as in a query), oldest first, and how many entries are shown in all: what `logbook list`
    prints by default, found from the ids and the withdrawals alone, without reading the other
    entries. ``oldest``: the ``count`` oldest instead (the app's first page in its default order)."""
    with store.connection() as conn:
        return reads.newest_ids(conn, count, withdrawn, oldest=oldest)


def _row(e: Any, arms: list[str], finished: int, active: int, last_run: str | None,
         withdrawal: dict[str, Any] | None = None) -> dict[str, Any]:
    (entry_id, slug, title, metric, goal, seeds, verdict, detail, status, tags, updated_at, retrospective, statement, notes,
     trainer, registered_at, registration_hash) = e
    comparisons = (detail or {}).get("comparisons") or []
    best = max(comparisons, key=lambda c: _finite(c.get("effect"), -math.inf), default=None)
    withdrawn = withdrawal is not None  # `logbook withdraw` (entries/withdraw.py); hidden unless asked for
    tags = [str(t) for t in (tags or [])]
    text = " ".join([title, slug, metric, statement or "", notes or "", *arms, *tags, trainer,
                     "retrospective" if retrospective else ""])
    return {
        "id": entry_id, "slug": slug, "title": title, "metric": metric, "goal": goal, "arms": len(arms),
        "arm_names": arms, "seeds": seeds, "done": finished, "planned": len(arms) * seeds, "active": active,
        "effect": None if best is None else best.get("effect"),
        "ci_low": None if best is None else best.get("ci_low"),
        "ci_high": None if best is None else best.get("ci_high"),
        "verdict": verdict, "verdict_computed_at": (detail or {}).get("computed_at"),
        "state": entry_state(status=status, verdict=verdict, finished=finished, withdrawn=withdrawn), "status": status,
        "tags": tags, "trainer": trainer, "withdrawn": withdrawn, "withdrawal": withdrawal,
        "retrospective": bool(retrospective),
        "last_activity": max(filter(None, (updated_at, last_run)), default=None), "last_run": last_run,
        "registered_at": registered_at, "registration_hash": registration_hash, "updated_at": updated_at,
        "haystack": text.lower(),
    }


def _finite(value: Any, default: float) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else default


def stale(row: dict[str, Any]) -> bool:
    """Whether the row's state may differ from a fresh verdict: results but no verdict computed,
    or a run ended after the cached verdict was computed."""
    if row["state"] in ("draft", "withdrawn", "no results"):
        return False
    if row["state"] == "unjudged":
        return True
    computed, last = row.get("verdict_computed_at"), row.get("last_run")
    return bool(computed and last and last > computed)


def rejudge(row: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """The row with a freshly computed verdict (``entries.verdicts.entry_verdict``'s result)."""
    comparisons = verdict.get("comparisons") or []
    best = max(comparisons, key=lambda c: _finite(c.get("effect"), -math.inf), default=None)
    return {**row, "verdict": verdict["verdict"],
            "state": entry_state(status=row["status"], verdict=verdict["verdict"], finished=row["done"],
                                 withdrawn=row["withdrawn"]),
            "effect": None if best is None else best.get("effect"),
            "ci_low": None if best is None else best.get("ci_low"),
            "ci_high": None if best is None else best.get("ci_high")}


def judge_stale(store: Store, rows: list[dict[str, Any]], limit: int) -> dict[int, dict[str, Any]]:
    """Fresh rows for at most ``limit`` of ``rows`` whose state is stale, by id (the verdict is
    cached where the logbook can be written)."""
    from logbook.entries.verdicts import entry_verdict

    out = {}
    for row in [r for r in rows if stale(r)][:limit]:
        out[row["id"]] = rejudge(row, entry_verdict(store, str(row["id"]), cache=not store.read_only))
    return out


# ---- the query grammar --------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """A parsed filter: plain words (lower-cased) and ``key:value`` conditions, all of which hold."""

    words: tuple[str, ...] = ()
    conditions: tuple[tuple[str, str], ...] = ()
    withdrawn: str = "no"
    text: str = field(default="", compare=False)

    def __call__(self, row: dict[str, Any]) -> bool:
        return matches_query(row, self)


def parse_query(text: str, *, source: str = "filter") -> Query:
    """Words and ``key:value`` pairs (keys in ``KEYS``). A bad value raises ``InputError`` naming
    ``source`` (the flag or box it came from), the key and what was expected."""
    words, conditions, withdrawn = [], [], "no"
    for word in text.lower().split():
        key, colon, value = word.partition(":")
        if not colon or key not in KEYS:
            words.append(word)
            continue
        if not value:
            raise InputError(f"{source}: {key}: expected a value after '{key}:' (e.g. {key}:{_example(key)})")
        if key == "verdict":
            value = "|".join(state_word(v) for v in value.split("|"))
            wrong = [v for v in value.split("|") if v not in STATES]
            if wrong:
                raise InputError(f"{source}: verdict: {wrong[0]!r} is not a state; expected one of "
                                 + ", ".join(s.replace(" ", "-") for s in STATES))
        elif key == "status":
            wrong = [v for v in value.split("|") if v not in ENTRY_STATUSES]
            if wrong:
                raise InputError(f"{source}: status: {wrong[0]!r} is not an entry status; expected one of "
                                 f"{', '.join(ENTRY_STATUSES)}")
        elif key == "withdrawn":
            if value not in WITHDRAWN_VALUES:
                raise InputError(f"{source}: withdrawn: expected one of {', '.join(WITHDRAWN_VALUES)}, got {value!r}")
            withdrawn = value
            continue
        conditions.append((key, value))
    if withdrawn == "no" and any(k == "verdict" and "withdrawn" in v.split("|") for k, v in conditions):
        withdrawn = "any"  # asking for withdrawn entries by their state shows them
    return Query(tuple(words), tuple(conditions), withdrawn, text)


def _example(key: str) -> str:
    return {"tag": "rnn", "verdict": "negative", "status": "concluded", "metric": "val_loss", "trainer": "command",
            "withdrawn": "yes"}[key]


def matches_query(row: dict[str, Any], query: Query) -> bool:
    """Whether ``row`` (from :func:`entry_rows`) answers ``query``."""
    if query.withdrawn != "any" and row.get("withdrawn", False) != (query.withdrawn == "yes"):
        return False
    for key, value in query.conditions:
        if key == "tag" and value not in (t.lower() for t in row["tags"]):
            return False
        if key == "verdict" and row["state"] not in value.split("|"):
            return False
        if key == "status" and row["status"] not in value.split("|"):
            return False
        if key == "metric" and row["metric"].lower() != value:
            return False
        if key == "trainer" and row["trainer"].lower() != value:
            return False
    return all(word in row["haystack"] for word in query.words)


def matches(row: dict[str, Any], text: str) -> bool:
    """Whether ``row`` answers the query ``text`` (a query with a bad value matches nothing)."""
    try:
        query = parse_query(text)
    except InputError:
        return False
    return matches_query(row, query)


def parse_sort(text: str, *, source: str = "--sort") -> tuple[str, bool]:
    """``FIELD[:asc|desc]`` to the row key to sort by and whether descending."""
    name, _, direction = text.strip().lower().partition(":")
    if name not in SORT_FIELDS:
        raise InputError(f"{source}: FIELD: {name!r} is not a sort field; expected one of "
                         f"{', '.join(sorted(SORT_FIELDS))} (optionally followed by :asc or :desc)")
    key, descending = SORT_FIELDS[name]
    if direction:
        if direction not in ("asc", "desc"):
            raise InputError(f"{source}: direction: {direction!r} is not a direction; expected asc or desc after '{name}:'")
        descending = direction == "desc"
    return key, descending


def sort_key(key: str) -> Callable[[dict[str, Any]], tuple]:
    """Rows sort by ``key`` with empty values last in either direction, then by id."""
    def order(row: dict[str, Any]) -> tuple:
        value = row.get(key)
        if isinstance(value, str):
            value = value.lower()
        return (value is None, value if value is not None else 0, row["id"])
    return order


def sorted_rows(rows: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    """``rows`` by ``key``; rows without a value stay last whichever the direction."""
    present = sorted((r for r in rows if r.get(key) is not None), key=sort_key(key), reverse=descending)
    return present + [r for r in rows if r.get(key) is None]


def select_rows(rows: list[dict[str, Any]], query: Query, key: str = "id", descending: bool = False,
                limit: int | None = None) -> list[dict[str, Any]]:
    """The rows answering ``query``, sorted, at most ``limit`` of them."""
    chosen = sorted_rows([r for r in rows if matches_query(r, query)], key, descending)
    return chosen if limit is None else chosen[:limit]


def list_query(verdicts: tuple[str, ...] | list[str], tags: tuple[str, ...] | list[str], statuses: tuple[str, ...] | list[str],
               search: str, sort: str, show_all: bool) -> tuple[Query, tuple[str, bool]]:
    """`logbook list`'s flags as one query and sort; bad values raise ``InputError`` naming the flag."""
    query = parse_query(search, source="--search")
    if any(not value.strip() for value in tags):
        raise InputError("--tag: tag: expected a tag name, got an empty value")
    conditions = list(query.conditions) + [("tag", value.strip().lower()) for value in tags]
    withdrawn = query.withdrawn
    for flag, key, values in (("--verdict", "verdict", verdicts), ("--status", "status", statuses)):
        if values:
            typed = "|".join(v.strip().lower().replace(" ", "-") for v in values)
            parsed = parse_query(f"{key}:{typed}", source=flag)
            conditions += parsed.conditions
            withdrawn = parsed.withdrawn if withdrawn == "no" else withdrawn
    if show_all and withdrawn == "no":
        withdrawn = "any"
    return Query(query.words, tuple(conditions), withdrawn, search), parse_sort(sort)
