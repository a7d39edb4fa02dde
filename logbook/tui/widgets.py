"""Widgets and renderers of the terminal app: verdict badges, tables that keep their cursor,
per-seed distributions, curves."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Iterable, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable, Static

# One style per state word of ``logbook.entries.states``.
VERDICT_STYLES = {
    "positive": "bold black on green", "negative": "bold white on blue",
    "inconclusive": "bold black on yellow", "unjudged": "bold white on grey37", "no results": "bold white on grey37",
    "draft": "bold black on grey70", "withdrawn": "bold white on grey23",
}


class CursorTable(DataTable):
    """A row table whose Home and End move the cursor to the first and last row (the plain table
    scrolls sideways instead); ←/→ scroll the columns that do not fit."""

    BINDINGS = [
        Binding("home", "cursor_first", "First row", show=False),
        Binding("end", "cursor_last", "Last row", show=False),
    ]

    def action_cursor_first(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_cursor_last(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)


def cursor_key(table: DataTable) -> str | None:
    """The key of the row under the cursor (None in an empty table)."""
    if table.row_count and 0 <= table.cursor_row < table.row_count:
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
    return None


def refill_table(table: DataTable, rows: Iterable[tuple[str, Sequence[Any]]], keep: str | None = None) -> None:
    """Replace every row of ``table`` with ``rows`` (``(key, cells)`` pairs), keeping the cursor on
    the row with the same key where it is still there (else at the same position): a refresh never
    moves the cursor to another row. ``keep`` names that key when the table was emptied before
    (its columns rebuilt); by default it is the row under the cursor now."""
    current = keep if keep is not None else cursor_key(table)
    position, scroll_x, scroll_y = table.cursor_row, table.scroll_x, table.scroll_y
    table.clear()  # (also scrolls to the top left: put back below)
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if not table.row_count:
        return
    row = table.get_row_index(current) if current is not None and current in table.rows else min(max(position, 0), table.row_count - 1)
    table.move_cursor(row=row, scroll=False)

    def restore_view() -> None:  # once the refilled table has its size again
        table.scroll_to(scroll_x, scroll_y, animate=False, immediate=True)
        table.move_cursor(row=table.cursor_row)  # and the cursor stays in view

    table.call_after_refresh(restore_view)


def seed_text(seed: int | None) -> str:
    """A run's seed for display: audit seeds stay hidden (None) until their audit ends."""
    return "hidden" if seed is None else str(seed)


def badge(verdict: str) -> Text:
    return Text(f" {verdict.upper()} ", style=VERDICT_STYLES.get(verdict, "bold"))


def retro_badge(short: bool = False) -> Text:
    """The mark of an entry imported after its results existed (not pre-registered)."""
    return Text(" R " if short else " RETROSPECTIVE ", style="bold black on magenta")


def number(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def figure(x: Any, digits: int = 4) -> str:
    """A number for the entry, run and queue screens: ``digits`` significant digits, always in
    positional notation (never 1e-05 beside 0.5), with a true minus sign; – when missing."""
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "–"
    if isinstance(x, int):
        return str(x).replace("-", "−")
    text = format(Decimal(f"{x:.{digits}g}"), "f")
    return ("0" if float(text) == 0 else text).replace("-", "−")


def distribution(arms: list[tuple[str, list[float], int]], width: int = 48, *, reference: float | None = None,
                 delta: float | None = None, better: int = 1) -> Text:
    """A strip plot per arm on one shared axis: every finite seed a dot (a digit where several
    share a cell), under it the interquartile box ├─┼─┤ with the median, and the seeds left out
    (diverged, failed) counted.

    ``reference`` (the baseline mean: an effect of zero) is drawn as a ┊ line through every row and
    ``delta`` as a ░ band from it towards the better side (``better`` +1: higher is better, -1:
    lower): a candidate whose seeds sit inside the band improves by less than δ."""
    finite = [v for _, values, _ in arms for v in values if math.isfinite(v)]
    text = Text()
    if not finite:
        text.append("no finished seeds yet", style="dim")
        return text
    width = max(10, width)
    marks = finite + ([reference] if reference is not None else [])
    if reference is not None and delta:
        marks.append(reference + better * delta)
    low, high = min(marks), max(marks)
    span = (high - low) or 1.0
    label_width = max(len(name) for name, _, _ in arms)

    def cell(v: float) -> int:
        return min(width - 1, max(0, int(round((v - low) / span * (width - 1)))))

    band: set[int] = set()
    if reference is not None and delta:
        ends = sorted((cell(reference), cell(reference + better * delta)))
        band = set(range(ends[0], ends[1] + 1))
    zero = cell(reference) if reference is not None else None

    def backdrop() -> list[str]:
        row = ["░" if position in band else " " for position in range(width)]
        if zero is not None:
            row[zero] = "┊"
        return row

    for name, values, excluded in arms:
        xs = sorted(v for v in values if math.isfinite(v))
        row, box = backdrop(), backdrop()
        if xs:
            q1, median, q3 = (xs[int(round(p * (len(xs) - 1)))] for p in (0.25, 0.5, 0.75))
            for position in range(cell(q1), cell(q3) + 1):
                box[position] = "─"
            box[cell(q1)], box[cell(q3)], box[cell(median)] = "├", "┤", "┼"
            counts: dict[int, int] = {}
            for v in xs:
                counts[cell(v)] = counts.get(cell(v), 0) + 1
            for position, n in counts.items():
                row[position] = "●" if n == 1 else str(min(n, 9))
        text.append(f"{name:>{label_width}} ", style="bold")
        for kind, cells in (("row", row), ("box", box)):
            for c in cells:
                text.append(c, style="dim" if c in "░┊" else ("cyan" if kind == "row" else "dim"))
            if kind == "row":
                bad = excluded + sum(1 for v in values if not math.isfinite(v))
                text.append(f"  n={len(xs)}" + (f" ✗{bad}" if bad else ""), style="red" if bad else "dim")
                text.append("\n" + " " * (label_width + 1))
        text.rstrip()
        text.append("\n")
    text.append(f"{'':>{label_width}} {figure(low):<{width // 2}}{figure(high):>{width - width // 2}}\n", style="dim")
    if reference is not None:
        legend = f"{'':>{label_width}} ┊ baseline mean {figure(reference)}"
        if delta:
            legend += f" · ░ better by less than δ = {figure(delta)}"
        text.append(legend, style="dim")
    return text


class Distribution(Static):
    """The per-seed distribution of the entry's metric, every seed visible, as wide as the card."""

    arms: list[tuple[str, list[float], int]] = []
    marks: dict[str, Any] = {}

    def show(self, arms: list[tuple[str, list[float], int]], **marks: Any) -> None:
        self.arms, self.marks = arms, marks
        self.draw()

    def draw(self) -> None:
        label = max((len(name) for name, _, _ in self.arms), default=0)
        available = self.content_size.width - label - 1 - len("  n=99 ✗9")
        self.update(distribution(self.arms, available if available > 10 else 48, **self.marks))

    def on_resize(self) -> None:
        if self.arms:
            self.draw()


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40, scale: tuple[float, float] | None = None) -> str:
    """A curve in block characters, resampled to ``width`` points; ``scale`` (low, high) puts
    several curves on one axis, else the curve spans its own range."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(values) > width:
        values = [values[int(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    low, high = scale if scale is not None else (min(finite), max(finite))
    span = (high - low) or 1.0
    top = len(SPARKS) - 1
    return "".join(" " if not math.isfinite(v) else SPARKS[min(top, max(0, int((v - low) / span * top)))] for v in values)
