"""The `export` verb: writeups in Markdown or LaTeX, per-seed tables in JSON or CSV."""

from __future__ import annotations

from pathlib import Path

import click

from logbook.cli.common import emit_json, json_option, open_store
from logbook.errors import InputError

VERDICTS = ("positive", "negative", "inconclusive")


def check_out_folder(out: Path) -> None:
    """Refuse, before anything is written, an --out that is a file or lies in a folder this
    process cannot write."""
    import os

    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} is a file; expected a folder")
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        where = "it" if existing == out else f"its folder {existing}"
        raise InputError(f"--out: cannot write to {out}: {where} is not writable; expected a folder you can write")


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
    store = open_store(ctx, "read")
    check_out_folder(out)
    try:
        written = write(store, list(entries), all_entries=all_entries, verdicts=verdicts, fmt=fmt, out=out)
    except OSError as exc:  # a disk that filled up or a folder made read-only meanwhile
        raise InputError(f"--out: cannot write to {out} ({exc.strerror or exc}); expected a folder you can write") from exc
    if as_json:
        emit_json({"files": [str(p) for p in written]})
    else:
        click.echo(f"wrote {len(written)} files to {out}: " + ", ".join(p.name for p in written[:3]) + (" ..." if len(written) > 3 else ""))
