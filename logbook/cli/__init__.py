"""The `logbook` command line: the click group, its verbs, and `main`.

Exit codes: 0 ok, 1 a failure while working, 2 bad input (one line per problem on stderr, each
naming the file or option, the field and what was expected; nothing is written), 3 a record that
does not verify (`verify`, and `run`/`requeue`/`audit`/`rerun` refusing a TAMPERED entry).

Each verb lives in the module for its group (entries, runs, verdicts, audits, exports, demo) and
imports what it needs when it runs, so `logbook --help` and the pure-statistics verbs start fast;
only `tui` (or a bare `logbook` in a terminal) imports Textual, and nothing here imports torch.
Verb modules import `logbook.cli.common`, never this module.
"""

from __future__ import annotations

import sys

import click

from logbook.cli import audits, backup, compare, demo, entries, exports, imports, runs, schema, studies, verdicts, verify
from logbook.errors import InputError, LogbookError


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=str),
    envvar="LOGBOOK_DB",
    help="Logbook database (default: .logbook/logbook.db at the git root; env LOGBOOK_DB).",
)
@click.version_option(package_name="negative-results-logbook", prog_name="logbook")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """A negative-results logbook: register a hypothesis, run it on many seeds, get an honest verdict."""
    ctx.ensure_object(dict)
    ctx.obj["db"] = db
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            ctx.invoke(entries.tui)
        else:  # scripts and pipes get the list of verbs
            click.echo(ctx.get_help())



for _verb in (
    entries.tui, entries.init, entries.example, entries.new, entries.register_cmd, entries.amend, entries.withdraw, entries.list_cmd, entries.show,
    runs.run_cmd, runs.worker, runs.status, runs.cancel, runs.requeue,
    verdicts.verdict_cmd, verdicts.audit_claim, compare.compare_cmd,
    audits.audit, audits.rerun,
    exports.export,
    verify.verify,
    backup.backup,
    imports.import_cmd,
    studies.variance, studies.robustness,
    demo.demo,
    schema.schema_cmd,
):
    cli.add_command(_verb)


def _fail(lines: list[str], exit_code: int, as_json: bool) -> None:
    """Print a failure and exit: one line per problem, or under ``--json`` one JSON object per line
    (``{"error", "source", "field", "exit_code"}``) so a `jq` pipeline can read errors too."""
    import json

    from logbook.export.escape import json_text, terminal

    for line in lines:  # lines quote what the user gave: nothing in them may drive the terminal
        if as_json:
            parts = line.split(": ", 2)
            source, field = (parts[0], parts[1]) if len(parts) == 3 else (None, None)
            line = json_text(json.dumps({"error": line, "source": source, "field": field, "exit_code": exit_code},
                                        ensure_ascii=False))
        click.echo(line if as_json else terminal(line), err=True)
    sys.exit(exit_code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn errors into one-line messages and exit codes."""
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in args
    try:
        cli.main(args=args, prog_name="logbook", standalone_mode=False)
    except InputError as exc:
        _fail(exc.lines, exc.exit_code, as_json)
    except LogbookError as exc:
        _fail([f"logbook: error: {exc}"], exc.exit_code, as_json)
    except click.exceptions.Abort:
        _fail(["aborted"], 1, as_json)
    except click.ClickException as exc:
        if not as_json:
            exc.show()
            sys.exit(exc.exit_code)
        _fail([exc.format_message()], exc.exit_code, as_json)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        db_errors = sys.modules.get("sqlalchemy.exc")
        if db_errors is not None and isinstance(exc, db_errors.SQLAlchemyError):
            reason = getattr(exc, "orig", None) or exc
            _fail([f"logbook: database error: {reason}"], 1, as_json)
        raise
    sys.exit(0)
