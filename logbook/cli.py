"""The `logbook` command line.

Exit codes: 0 ok, 1 a failure while working, 2 bad input (one line per problem on stderr, each
naming the file or option, the field and what was expected; nothing is written).

Verbs import what they need when they run, so `logbook --help` and the pure-statistics verbs
start fast; only `tui` (or a bare `logbook` in a terminal) imports Textual, and nothing here
imports torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from logbook.errors import InputError, LogbookError
from logbook.jsonsafe import json_safe


def emit_json(value: Any) -> None:
    click.echo(json.dumps(json_safe(value), indent=2, ensure_ascii=False, allow_nan=False))


def _open_store(ctx: click.Context, *, create: bool = True):
    from logbook.db.engine import open_store
    from logbook.paths import resolve_db_path

    store = open_store(resolve_db_path(ctx.obj.get("db")), create=create)
    for note in store.notes:
        click.echo(f"logbook: note: {note}", err=True)
    ctx.call_on_close(store.dispose)
    return store


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def wait_for_runs(store, run_ids: list[int], label: str, quiet: bool) -> None:  # noqa: ANN001
    """A progress bar until every run in ``run_ids`` has finished (on stderr when ``quiet``)."""
    import time

    from sqlmodel import col, select

    from logbook.db.models import Run
    from logbook.runstatus import FINISHED

    with click.progressbar(length=len(run_ids), label=label, show_pos=True,
                           file=click.get_text_stream("stderr") if quiet else None) as bar:
        done_before = 0
        while True:
            with store.session() as session:
                statuses = session.exec(select(Run.status).where(col(Run.id).in_(run_ids))).all()
            done = sum(s in FINISHED for s in statuses)
            bar.update(done - done_before)
            done_before = done
            if done >= len(run_ids):
                return
            time.sleep(0.5)


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
            ctx.invoke(tui)
        else:  # scripts and pipes get the list of verbs
            click.echo(ctx.get_help())


@cli.command()
@click.pass_context
def tui(ctx: click.Context) -> None:
    """Open the terminal app (also what a bare `logbook` does in a terminal)."""
    from logbook.paths import resolve_db_path
    from logbook.tui.app import run_app

    run_app(resolve_db_path(ctx.obj.get("db")))


@cli.command()
@json_option
@click.pass_context
def init(ctx: click.Context, as_json: bool) -> None:
    """Create (or upgrade) the logbook database."""
    from logbook.db.engine import head_revision

    store = _open_store(ctx)
    info = {"db": str(store.path), "journal_mode": store.journal_mode, "schema_revision": head_revision()}
    if as_json:
        emit_json(info)
    else:
        click.echo(f"logbook ready at {store.path} (schema {info['schema_revision']}, {store.journal_mode} journal)")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--register", "do_register", is_flag=True, help="Register (lock) the entry at once.")
@json_option
@click.pass_context
def new(ctx: click.Context, file: Path, do_register: bool, as_json: bool) -> None:
    """Add the hypothesis in FILE (YAML or TOML) as a draft entry."""
    from logbook.entries import create_draft, entry_detail, register
    from logbook.entryfile import load_entry_file

    spec = load_entry_file(file)  # validate before the database is even opened
    store = _open_store(ctx)
    entry = create_draft(store, spec)
    if do_register:
        entry = register(store, str(entry.id))
    detail = entry_detail(store, str(entry.id))
    if as_json:
        emit_json(detail)
    else:
        state = f"registered, hash {entry.registration_hash[:12]}" if do_register else "draft"
        click.echo(f"added entry {entry.id}: {entry.slug} ({state})")


@cli.command("register")
@click.argument("entry")
@json_option
@click.pass_context
def register_cmd(ctx: click.Context, entry: str, as_json: bool) -> None:
    """Lock ENTRY: record the git state, draw the planned seeds, hash the registered content."""
    from logbook.entries import entry_detail, register

    store = _open_store(ctx, create=False)
    registered = register(store, entry)
    detail = entry_detail(store, str(registered.id))
    if as_json:
        emit_json(detail)
    else:
        dirty = " (dirty tree: diff recorded)" if registered.git_dirty else ""
        commit = registered.git_commit[:12] if registered.git_commit else "no git repository"
        click.echo(f"registered {registered.slug}: commit {commit}{dirty}, hash {registered.registration_hash}")


@cli.command()
@click.argument("entry")
@click.option("--field", "field_name", required=True, help="title, hypothesis, notes, tags, seeds, min_effect, alpha, or arms.NAME")
@click.option("--value", required=True, help="The new value (YAML syntax: 0.02, auto, [a, b], {lr: 0.01}).")
@click.option("--reason", required=True, help="Why the registered plan changes.")
@json_option
@click.pass_context
def amend(ctx: click.Context, entry: str, field_name: str, value: str, reason: str, as_json: bool) -> None:
    """Append a dated amendment to a registered ENTRY."""
    from logbook.db.queries import amendment_dict
    from logbook.entries import amend as do_amend

    store = _open_store(ctx, create=False)
    amendment = do_amend(store, entry, field_name, value, reason)
    if as_json:
        emit_json(amendment_dict(amendment))
    else:
        click.echo(f"amended {field_name}: {amendment.old_value!r} -> {amendment.new_value!r} ({amendment.reason})")


@cli.command("list")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List every entry."""
    from logbook.db.queries import list_entries

    store = _open_store(ctx)
    with store.session() as session:
        rows = list_entries(session)
    if as_json:
        emit_json({"entries": rows})
        return
    if not rows:
        click.echo("no entries yet: write a hypothesis file and run `logbook new FILE --register`")
        return
    click.echo(f"{'id':>4}  {'status':<10}  {'verdict':<12}  {'seeds':>5}  {'metric':<14}  title")
    for row in rows:
        arrow = "↓" if row["goal"] == "minimize" else "↑"
        click.echo(
            f"{row['id']:>4}  {row['status']:<10}  {row['verdict'] or '-':<12}  {row['seeds']:>5}  "
            f"{(row['metric'] + ' ' + arrow):<14}  {row['title']}"
        )


def _show_text(d: dict[str, Any]) -> None:
    arrow = "lower is better" if d["goal"] == "minimize" else "higher is better"
    delta = f"{d['min_effect']:g}" if d["min_effect"] is not None else "auto (default rule)"
    click.echo(f"{d['title']}  [{d['id']}: {d['slug']}]")
    click.echo(f"  hypothesis : {d['hypothesis']}")
    click.echo(f"  metric     : {d['metric']} ({arrow}); δ = {delta}; α = {d['alpha']:g}")
    click.echo(f"  seeds      : {d['seeds']} per arm" + (f" {d['planned_seeds']}" if d["planned_seeds"] else ""))
    trainer = d["trainer"].get("name") or f"command: {d['trainer'].get('command')}"
    click.echo(f"  trainer    : {trainer}")
    for arm in d["arms"]:
        config = json.dumps(arm["config"], sort_keys=True)
        click.echo(f"  arm        : {arm['name']} ({arm['role']}) {config}")
    if d["tags"]:
        click.echo(f"  tags       : {', '.join(d['tags'])}")
    click.echo(f"  status     : {d['status']}" + (f", verdict {d['verdict']}" if d["verdict"] else ""))
    if d["registered_at"]:
        git = d["git"]
        if git["in_repo"]:
            where = f"commit {git['commit'] or '(none yet)'} on {git['branch'] or 'detached HEAD'}"
            if git["dirty"]:
                where += f", dirty ({git['diff_lines']} diff lines, {len(git['untracked'])} untracked files)"
        else:
            where = "outside any git repository"
        check = "verified" if d["registration_verified"] else "DOES NOT MATCH its content"
        click.echo(f"  registered : {d['registered_at']}, {where}")
        click.echo(f"  hash       : {d['registration_hash']} ({check})")
    else:
        click.echo("  registered : no (draft)")
    for a in d["amendments"]:
        click.echo(f"  amendment  : {a['at']} {a['field']}: {a['old']!r} -> {a['new']!r} ({a['reason']})")
    if d["runs"]:
        click.echo("  runs       : " + ", ".join(f"{n} {s}" for s, n in d["runs"].items())
                   + (f" ({d['slurm_requeues']} automatic Slurm requeues)" if d.get("slurm_requeues") else ""))


@cli.command()
@click.argument("entry")
@json_option
@click.pass_context
def show(ctx: click.Context, entry: str, as_json: bool) -> None:
    """Show one entry: its registration, arms, amendments and runs."""
    from logbook.entries import entry_detail

    store = _open_store(ctx, create=False)
    detail = entry_detail(store, entry)
    if as_json:
        emit_json(detail)
    else:
        _show_text(detail)


def _register_extra_commands() -> None:
    """Verbs defined in their own modules (kept out of this file's import cost)."""
    from logbook import cli_audit  # noqa: F401  (registers audit, rerun)
    from logbook import cli_engine  # noqa: F401  (registers run, worker, status, cancel, requeue)
    from logbook import cli_export  # noqa: F401  (registers export)
    from logbook import cli_verdict  # noqa: F401  (registers verdict, audit-claim)
    from logbook import demo  # noqa: F401  (registers demo)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn errors into one-line messages and exit codes."""
    _register_extra_commands()
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

