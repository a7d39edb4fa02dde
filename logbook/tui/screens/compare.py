"""The compare screen: the entries and arms marked on the list, side by side.

Every verdict with its effect and interval first, then the configuration with every difference
highlighted, each arm's per-seed values on one shared axis (when the arms report the same
metric), and their mean learning curves on one scale. The data is `logbook compare`'s
(logbook.entries.compare), loaded in a thread worker (tui/data.py: compare_view).
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from logbook.tui.messages import CompareLoaded
from logbook.tui.screens.base import BaseScreen
from logbook.tui.widgets import Distribution, badge, distribution, number, sparkline

CELL = 18  # widest configuration value shown in a cell


def label(arm: dict[str, Any]) -> str:
    """An arm's short name on this screen, ``id:arm``: what `logbook compare` takes back."""
    return f"{arm['entry_id']}:{arm['arm']}"


def shown(value: Any) -> str:
    text = "–" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= CELL else text[: CELL - 1] + "…"


def entries_text(view: dict[str, Any]) -> Text:
    """One line per entry compared: id, title, verdict badge, and WITHDRAWN where it is."""
    text = Text()
    for e in view["entries"]:
        text.append(f"{e['id']}: ", style="bold")
        text.append(e["title"] + " ")
        text.append_text(badge(e["verdict"]))
        if e["withdrawn"]:
            text.append(f" WITHDRAWN {e['withdrawn']['at'][:10]}", style="bold red")
        text.append("\n")
    text.rstrip()
    return text


def curves_text(view: dict[str, Any], width: int) -> Text:
    """The chosen arms' mean curves on one scale (the lowest to the highest mean of any arm)."""
    curves = view.get("curves") or {}
    text = Text()
    if not curves or not curves.get("arms"):
        text.append("no learning curves for these arms", style="dim")
        return text
    every = [v for values in curves["arms"].values() for v in values if math.isfinite(v)]
    scale = (min(every), max(every))
    names = list(curves["arms"])
    name_width = max(len(n) for n in names)
    text.append(f"mean {curves['name']} over seeds, one scale: {number(scale[0], 3)} to {number(scale[1], 3)}\n", style="bold")
    spark_width = max(10, width - name_width - 20)
    for index, name in enumerate(names):
        values = curves["arms"][name]
        text.append(f"{name:<{name_width}} ")
        text.append(sparkline(values, spark_width, scale), style=("cyan", "magenta", "green", "yellow")[index % 4])
        text.append(f" {number(values[0], 3)} → {number(values[-1], 3)}\n")
    text.rstrip()
    return text


class CompareScreen(BaseScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("pagedown", "page(1)", "Page down", show=False, priority=True),
        Binding("pageup", "page(-1)", "Page up", show=False, priority=True),
    ]

    def __init__(self, refs: list[str]):
        super().__init__()
        self.refs = refs
        self.view: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="compare-body"):
            yield Static(id="compare-entries", classes="card")
            yield DataTable(id="compare-verdicts", cursor_type="row")
            yield DataTable(id="compare-config", cursor_type="row", zebra_stripes=True)
            yield Distribution(id="compare-distribution", classes="card")
            yield Static(id="compare-curves", classes="card")
        yield Footer()

    def on_mount(self) -> None:
        self.title, self.sub_title = "compare", " ".join(self.refs)
        self.query_one("#compare-config", DataTable).focus()
        self.load()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        from logbook.tui.data import compare_view

        self.post_message(CompareLoaded(compare_view(self.app.store, self.refs)))

    def on_compare_loaded(self, message: CompareLoaded) -> None:
        self.view = view = message.view
        arms = view["arms"]
        differing = sum(row["differs"] for row in view["config"])
        self.sub_title = (f"{len(arms)} arms of {len(view['entries'])} entries · "
                          + (f"{differing} setting{'s differ' if differing != 1 else ' differs'}"))
        self.query_one("#compare-entries", Static).update(entries_text(view))
        config = self.query_one("#compare-config", DataTable)
        config.clear(columns=True)
        config.add_column("setting", key="setting")
        for arm in arms:
            config.add_column(label(arm), key=arm["key"])
        for row in view["config"]:
            style = "bold yellow" if row["differs"] else ""
            config.add_row(Text(("* " if row["differs"] else "  ") + row["key"], style=style),
                           *(Text(shown(row["values"][a["key"]]), style=style) for a in arms), key=row["key"])
        plot = self.query_one(Distribution)
        if view["same_metric"]:
            plot.update(Text(f"{arms[0]['metric']} per seed, one axis\n", style="bold")
                        + distribution([(label(a), [math.nan if v is None else v for v in a["values"]], a["excluded"])
                                        for a in arms]))
        else:
            plot.update(Text("the arms report different metrics: no shared axis", style="dim"))
        self.query_one("#compare-curves", Static).update(curves_text(view, self.size.width - 6))
        verdicts = self.query_one("#compare-verdicts", DataTable)
        verdicts.clear(columns=True)
        levels = {c.get("level") for c in view["comparisons"]}
        one_level = len(levels) == 1 and None not in levels  # then the header says it once
        effect_head = f"effect [{next(iter(levels)):.0%} interval]" if one_level else "effect [interval]"
        for column in ("#", "candidate vs baseline", "verdict", effect_head, "δ"):
            verdicts.add_column(column, key=column)
        ids = {e["slug"]: e["id"] for e in view["entries"]}
        for c in view["comparisons"]:
            level = f" {c['level']:.0%}" if c.get("level") is not None and not one_level else ""
            verdicts.add_row(str(ids[c["entry"]]), f"{c['candidate']} vs {c['baseline']}"[:28], badge(c["verdict"]),
                             f"{number(c['effect'], 3)} [{number(c['ci_low'], 3)}, {number(c['ci_high'], 3)}]{level}",
                             number(c["delta"], 3))
        if not view["comparisons"]:
            verdicts.add_row("–", "no candidate among the chosen arms", "", "", "")

    def action_page(self, direction: int) -> None:
        body = self.query_one("#compare-body", VerticalScroll)
        body.scroll_page_down() if direction > 0 else body.scroll_page_up()

