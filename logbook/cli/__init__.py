"""The `logbook` command line: the click group, its verbs, and `main`.

Exit codes: 0 ok, 1 a failure while working, 2 bad input (one line per problem on stderr, each
naming the file or option, the field and what was expected; nothing is written).

Each verb lives in the module for its group (entries, runs, verdicts, audits, exports, demo) and
imports what it needs when it runs, so `logbook --help` and the pure-statistics verbs start fast;
only `tui` (or a bare `logbook` in a terminal) imports Textual, and nothing here imports torch.
Verb modules import `logbook.cli.common`, never this module.
"""

from __future__ import annotations

import sys

import click

from logbook.cli import audits, demo, entries, exports, runs, studies, verdicts
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
    entries.tui, entries.init, entries.new, entries.register_cmd, entries.amend, entries.list_cmd, entries.show,
    runs.run_cmd, runs.worker, runs.status, runs.cancel, runs.requeue,
    verdicts.verdict_cmd, verdicts.audit_claim,
    audits.audit, audits.rerun,
    exports.export,
    studies.variance, studies.robustness,
    demo.demo,
):
    cli.add_command(_verb)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn errors into one-line messages and exit codes."""
    try:
        cli.main(args=argv, prog_name="logbook", standalone_mode=False)
    except InputError as exc:
        for line in exc.lines:
            click.echo(line, err=True)
        sys.exit(exc.exit_code)
    except LogbookError as exc:
        click.echo(f"logbook: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        db_errors = sys.modules.get("sqlalchemy.exc")
        if db_errors is not None and isinstance(exc, db_errors.SQLAlchemyError):
            reason = getattr(exc, "orig", None) or exc
            click.echo(f"logbook: database error: {reason}", err=True)
            sys.exit(1)
        raise
    sys.exit(0)
