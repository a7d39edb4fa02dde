"""The `export` verb: writeups in Markdown or LaTeX, per-seed tables in JSON or CSV."""

from __future__ import annotations

from pathlib import Path

import click

from logbook.cli.common import emit_json, json_option, open_store
from logbook.errors import InputError

VERDICTS = ("positive", "negative", "inconclusive")


@click.command()
@click.argument("entries", nargs=-1)
@click.option("--all", "all_entries", is_flag=True, help="The whole logbook as one document.")
@click.option("--verdict", "verdict_filter", help="Only entries with these verdicts, e.g. negative,inconclusive.")
@click.option("--format", "fmt", type=click.Choice(["md", "tex", "json", "csv"]), default="md", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("logbook-export"), show_default=True,
              help="Folder to write into (figures go to OUT/figures).")
@json_option
@click.pass_context
def export(ctx: click.Context, entries: tuple[str, ...], all_entries: bool, verdict_filter: str | None, fmt: str,
           out: Path, as_json: bool) -> None:
    """Export ENTRIES (or --all) as a writeup or a per-seed table."""
    from logbook.export.writer import export as write

    if bool(entries) == all_entries:
        raise InputError("ENTRIES: expected one or more entries, or --all (not both)")
    verdicts = None
    if verdict_filter:
        verdicts = [v.strip() for v in verdict_filter.split(",") if v.strip()]
        bad = [v for v in verdicts if v not in VERDICTS]
        if bad:
            raise InputError(f"--verdict: expected a comma-separated list of {', '.join(VERDICTS)}, got {', '.join(bad)}")
    store = open_store(ctx, create=False)
    written = write(store, list(entries), all_entries=all_entries, verdicts=verdicts, fmt=fmt, out=out)
    if as_json:
        emit_json({"files": [str(p) for p in written]})
    else:
        click.echo(f"wrote {len(written)} files to {out}: " + ", ".join(p.name for p in written[:3]) + (" ..." if len(written) > 3 else ""))
