"""The `compare` verb: entries and arms side by side (configuration, per-arm summaries, verdicts)."""

from __future__ import annotations

import json
from typing import Any

import click

from logbook.cli.common import emit_json, json_option, open_store, say
from logbook.cli.present import fmt_num

CELL = 24  # widest column of a value in the configuration table


def cell(value: Any) -> str:
    """A configuration value in a table cell: text as is, the rest as JSON, missing as "–"."""
    text = "–" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= CELL else text[: CELL - 1] + "…"


def print_comparison(result: dict[str, Any]) -> None:
    """The three tables: configuration (``*`` and colour mark a difference), arms, verdicts."""
    arms = result["arms"]
    heads = [f"{a['entry_id']}:{a['arm']}" for a in arms]  # short, and what `compare` takes back
    widths = [min(CELL, max(len(h), *(len(cell(r["values"][a["key"]])) for r in result["config"])))
              for a, h in zip(arms, heads)]
    key_width = max(len(r["key"]) for r in result["config"]) + 4
    for entry in result["entries"]:
        withdrawn = f"  WITHDRAWN at {entry['withdrawn']['at']}: {entry['withdrawn']['reason']}" if entry["withdrawn"] else ""
        say(f"{entry['id']}: {entry['slug']}  {entry['title']}  ({entry['status']}, {entry['verdict']}){withdrawn}")
    say("")
    say("configuration (* differs)")
    say((" " * key_width + "  ".join(cell(h).ljust(w) for h, w in zip(heads, widths))).rstrip())
    for row in result["config"]:
        line = (("* " if row["differs"] else "  ") + row["key"].ljust(key_width - 2) + "  ".join(
            cell(row["values"][a["key"]]).ljust(w) for a, w in zip(arms, widths))).rstrip()
        click.echo(click.style(terminal_line(line), fg="yellow", bold=True) if row["differs"] else terminal_line(line))
    say("")
    name_width = max(len(h) for h in heads)
    say(f"{'arm'.ljust(name_width)}  {'metric':<14} {'n':>4} {'mean':>10} {'sd':>10} {'excluded':>8}")
    for a, head in zip(arms, heads):
        arrow = "↓" if a["goal"] == "minimize" else "↑"
        say(f"{head.ljust(name_width)}  {(a['metric'] + ' ' + arrow):<14} {a['n']:>4} {fmt_num(a['mean']):>10} "
            f"{fmt_num(a['sd']):>10} {a['excluded']:>8}")
    if not result["same_metric"]:
        say("note: the arms report different metrics; their numbers are not on one scale")
    say("")
    if not result["comparisons"]:
        say("verdicts: no candidate among the chosen arms")
        return
    say("verdicts (effect: positive is better)")
    for c in result["comparisons"]:
        level = f"{c['level']:.0%}" if c["level"] is not None else ""
        say(f"  {c['entry']}: {c['candidate']} vs {c['baseline']}: {c['verdict']}, effect {fmt_num(c['effect'])} "
            f"{level} [{fmt_num(c['ci_low'])}, {fmt_num(c['ci_high'])}] ({c['interval']}), δ = {fmt_num(c['delta'])}")


def terminal_line(line: str) -> str:
    from logbook.export.escape import terminal

    return terminal(line)


@click.command("compare")
@click.argument("refs", nargs=-1, metavar="ENTRY[:ARM]...")
@json_option
@click.pass_context
def compare_cmd(ctx: click.Context, refs: tuple[str, ...], as_json: bool) -> None:
    """Compare entries (every arm) or single arms (ENTRY:ARM): configuration side by side with the
    differences marked, per-arm n, mean and sd, and every verdict with its effect and interval."""
    from logbook.entries.compare import compare

    store = open_store(ctx, "read")
    result = compare(store, list(refs))
    if as_json:
        emit_json(result)
    else:
        print_comparison(result)
