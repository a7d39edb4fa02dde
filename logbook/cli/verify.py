"""The `verify` verb: recompute entries' hash chains against the live rows, or check an exported
writeup against the logbook it came from.

Exit codes: 0 intact (or the writeup matches), 3 when anything differs (each difference named by
entry, row and field), 2 for bad input.
"""

from __future__ import annotations

from pathlib import Path

import click

from logbook.cli.common import emit_json, json_option, open_store
from logbook.errors import TamperedError


@click.command("verify")
@click.argument("entries", nargs=-1)
@click.option("--export", "export_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Check that this exported writeup (md, tex, json, csv) still matches the logbook.")
@json_option
@click.pass_context
def verify(ctx: click.Context, entries: tuple[str, ...], export_file: Path | None, as_json: bool) -> None:
    """Recompute the hash chain of ENTRIES (default: every entry) and compare every recorded row with it."""
    store = open_store(ctx, "read")
    if export_file is not None:
        from logbook.export.check import check_export

        report = check_export(store, export_file)
        if as_json:
            emit_json(report)
        else:
            for item in report["entries"]:
                click.echo(f"{item['entry'] or '?'}: {item['result']}" + (f" ({item['detail']})" if item["detail"] else ""))
            click.echo(f"{export_file}: {report['result']}")
        if report["result"] != "matches":
            raise TamperedError(f"{export_file}: {report['result']}")
        return
    from logbook.entries.chain import verify_store

    results = verify_store(store, list(entries))
    tampered = [r for r in results if r.integrity == "TAMPERED"]
    if as_json:
        emit_json({"intact": not tampered, "entries": [r.to_dict() for r in results]})
    else:
        for r in results:
            head = f"chain head {r.head[:16]}…, {r.links} links" if r.head else "no chain"
            click.echo(f"{r.entry_id:>4} {r.slug}: {r.integrity} ({head})")
            for finding in r.findings:
                click.echo(f"       {r.slug}: {finding.line()}")
    if tampered:
        raise TamperedError(f"{len(tampered)} of {len(results)} entries TAMPERED: " + ", ".join(r.slug for r in tampered))
