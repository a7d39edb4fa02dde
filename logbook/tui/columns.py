"""The logbook list's columns as pure functions: each cell's text, each column's width, which
columns fit a width (the rest sit to the right, reached with ←/→), and the legend line."""

from __future__ import annotations

from typing import Any

from logbook.tui.widgets import number

SCROLLBAR = 1  # the table's vertical scrollbar (always there: logbook.tcss)
PADDING = 2  # a cell's padding, one column each side
# The columns in the order they give way to the title when the terminal is narrow: those that do
# not fit move to the right of the screen, where ←/→ reach them. Title takes whatever is left.
PRIORITY = ("#", "title", "state", "effect [interval]", "seeds", "last activity", "status", "metric", "arms")
SORT_OF = {"#": "id", "title": "title", "state": "state", "effect [interval]": "effect", "seeds": "done",
           "last activity": "last_activity", "status": "status", "metric": "metric", "arms": "arms"}


def effect_text(row: dict[str, Any]) -> str:
    """The best candidate's effect and its interval, whole numbers only (the column fits them)."""
    if row["effect"] is None:
        return "–"
    return f"{number(row['effect'], 3)} [{number(row['ci_low'], 3)}, {number(row['ci_high'], 3)}]"


def seeds_text(row: dict[str, Any]) -> str:
    """Finished of planned seeds, and ``+N`` runs queued or running."""
    return f"{row['done']}/{row['planned']}" + (f" +{row['active']}" if row["active"] else "")


def metric_text(row: dict[str, Any]) -> str:
    return f"{row['metric']} {'↓' if row['goal'] == 'minimize' else '↑'}"


def activity_text(row: dict[str, Any]) -> str:
    return (row["last_activity"] or "")[:16].replace("T", " ")


def column_widths(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Each fixed column's width: wide enough for every value it will show (numbers are never cut)."""
    def widest(texts, least: int, most: int = 10_000) -> int:
        return min(most, max([least, *map(len, texts)]))

    return {
        "#": widest((str(r["id"]) for r in rows), 3), "state": widest((f" {r['state']} " for r in rows), 5),
        "effect [interval]": widest(map(effect_text, rows), 17), "seeds": widest(map(seeds_text, rows), 5),
        "last activity": 16, "status": widest((r["status"] for r in rows), 6),
        "metric": widest(map(metric_text, rows), 6, 24), "arms": 4,
    }


def layout(width: int, widths: dict[str, int], sort_column: str | None, descending: bool) -> list[tuple[str, str, int]]:
    """The columns for a table ``width`` cells wide: ``(key, label, width)`` in order. Columns join
    the screen in ``PRIORITY`` order while the title keeps at least a quarter of the width (20 at
    least); the title takes the rest; the others follow off screen. The sort column's label carries
    ▲ or ▼."""
    def label(key: str) -> str:
        return key + ((" ▼" if descending else " ▲") if key == sort_column else "")

    fixed = {key: max(widths[key], len(label(key))) for key in widths}
    title_least = max(20, width // 4)
    room = width - SCROLLBAR - (title_least + PADDING)
    shown, rest = [], []
    for key in PRIORITY:
        if key == "title":
            continue
        if not rest and fixed[key] + PADDING <= room:
            shown.append(key)
            room -= fixed[key] + PADDING
        else:
            rest.append(key)
    title = max(title_least + room, len(label("title")))
    columns = [(key, label(key), fixed[key]) for key in shown]
    columns.insert(1, ("title", label("title"), title))
    return columns + [(key, label(key), fixed[key]) for key in rest]


def legend(width: int, sort_label: str, hidden: list[str], active: bool) -> str:
    """The line under the list: what the seeds column says, the sort, and what ←/→ reach."""
    parts: list[Any] = [("seeds: finished/planned" + (", +N queued or running" if active else ""),
                         "seeds: done/planned" + (" +running" if active else "")), f"sorted by {sort_label}"]
    if hidden:
        parts.append(("→ " + ", ".join(hidden), f"←/→ {len(hidden)} more columns"))
    parts.append("? keys")
    line = ""
    for part in parts:
        for text in (part if isinstance(part, tuple) else (part,)):
            candidate = f"{line} · {text}" if line else text
            if len(candidate) <= width - 2:
                line = candidate
                break
    return line
