"""What every verb shares: opening the store, `--json` output, waiting for runs.

Imports nothing of the verbs (they import this), and nothing heavy at module level.
"""

from __future__ import annotations

import json
from typing import Any

import click

from logbook.export.escape import json_text, terminal
from logbook.export.jsonsafe import json_safe


def emit_json(value: Any) -> None:
    click.echo(json_text(json.dumps(json_safe(value), indent=2, ensure_ascii=False, allow_nan=False)))


def say(line: str, *, err: bool = False) -> None:
    """Print a line built from stored text: no control character in it reaches the terminal."""
    click.echo(terminal(line), err=err)


def open_store(ctx: click.Context, mode: str, *, light: bool = False):
    """The logbook the verb works on, opened for ``mode``: ``create`` (only `init` and `new`),
    ``write``, ``read`` (read-only, never creates or upgrades a read-only file) or ``auto`` (write
    where allowed, else read). Anything else than ``create`` refuses a missing, empty or
    non-SQLite file with one line (exit 2) and creates nothing.

    ``light`` (with ``read``): a file already at the newest schema is opened with plain ``sqlite3``
    (``db.reads.Reader``: ``path``, ``notes``, ``connection()``), without importing SQLAlchemy;
    for the verbs whose reads are all in ``db.reads`` (`status`, `list`). Any other file takes
    the full path, which upgrades it or says in one line why it cannot."""
    from logbook.db.paths import resolve_db_path

    path = resolve_db_path(ctx.obj.get("db"))
    if light and mode == "read":
        from logbook.db.reads import open_reader

        reader = open_reader(path)
        if reader is not None:
            ctx.call_on_close(reader.dispose)
            return reader
    from logbook.db.engine import open_store

    store = open_store(path, mode=mode)
    for note in store.notes:
        click.echo(f"logbook: note: {note}", err=True)
    ctx.call_on_close(store.dispose)
    return store


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def wait_for_runs(store, run_ids: list[int], label: str, quiet: bool, *, summary_every_s: float = 30.0) -> None:  # noqa: ANN001
    """Stay until every run in ``run_ids`` has ended. On a terminal: a progress bar that counts
    failures and divergences too (on stderr when ``quiet``, i.e. under ``--json``). Anywhere else
    (nohup, CI, a pipe): one line per run that starts or ends, and a summary line with the ETA
    every ``summary_every_s`` seconds."""
    import sys
    import time

    from logbook.engine.progress import Watcher

    watcher = Watcher(store, run_ids)
    stream = click.get_text_stream("stderr") if quiet else click.get_text_stream("stdout")
    if not stream.isatty():
        click.echo(f"{label}: waiting for {len(run_ids)} runs", file=stream)
        last_summary = time.monotonic()
        while True:
            events, progress = watcher.look()
            for event in events:
                click.echo(event.line(), file=stream)
            if progress.done or time.monotonic() - last_summary >= summary_every_s:
                click.echo(f"{label}: {progress.summary()}", file=stream)
                last_summary = time.monotonic()
                sys.stdout.flush()
            if progress.done:
                return
            time.sleep(0.5)
    with click.progressbar(length=len(run_ids), label=label, show_pos=True, file=stream,
                           item_show_func=lambda _: None) as bar:
        finished_before = 0
        while True:
            _, progress = watcher.look()
            bar.label = f"{label} ({progress.summary()})"
            bar.update(progress.finished - finished_before)
            finished_before = progress.finished
            if progress.done:
                return
            time.sleep(0.5)


yes_option = click.option("--yes", "-y", "yes", is_flag=True,
                          help="Confirm commands that run for the first time in this logbook (for scripts).")


def confirm_commands(store, ref: str, *, runs: int | None, yes: bool) -> None:  # noqa: ANN001
    """Show the command and module trainers ENTRY would run for the first time in this logbook and
    ask (or take ``--yes``); without a terminal and without ``--yes``, refuse (exit 2) and say how
    to confirm. The preview goes to stderr, so ``--json`` output stays clean."""
    import sys

    from logbook.engine.confirm import preview, record_confirmation
    from logbook.entries.chain import require_intact
    from logbook.errors import InputError

    require_intact(store, ref)  # a tampered entry's commands are neither shown as genuine nor run (exit 3)
    from logbook.db.queries import resolve_entry
    from logbook.entries.withdraw import require_not_withdrawn

    with store.session() as session:  # refused before anything is shown or a confirmation recorded
        require_not_withdrawn(session, resolve_entry(session, ref), "run")
    shown = preview(store, ref, runs=runs)
    if not shown.unconfirmed:
        return
    for line in shown.lines():
        say(line, err=True)
    if not yes:
        if not sys.stdin.isatty():
            raise InputError(
                f"ENTRY: {shown.entry}: {len(shown.unconfirmed)} command(s) above would run for the first time in this "
                "logbook; expected a confirmation: read them, then run again with --yes"
            )
        if not click.confirm("Run them?", default=False, err=True):
            raise click.Abort()
    record_confirmation(store, shown.unconfirmed)
