"""Verbs about entries themselves: init, new, register, amend, list, show, and the terminal app."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from logbook.cli.common import emit_json, json_option, open_store, say
from logbook.export.escape import terminal


@click.command()
@click.option("--db", "db_here", type=click.Path(dir_okay=False, path_type=str),
              help="Logbook database (the same as `logbook --db PATH tui`).")
@click.pass_context
def tui(ctx: click.Context, db_here: str | None = None) -> None:
    """Open the terminal app (also what a bare `logbook` does in a terminal)."""
    from logbook.db.paths import resolve_db_path
    from logbook.tui.app import run_app

    run_app(resolve_db_path(db_here or ctx.obj.get("db")))


@click.command()
@json_option
@click.pass_context
def init(ctx: click.Context, as_json: bool) -> None:
    """Create (or upgrade) the logbook database."""
    from logbook.db.engine import head_revision
    from logbook.db.paths import write_own_gitignore

    store = open_store(ctx, "create")
    write_own_gitignore(store.path)
    info = {"db": str(store.path), "journal_mode": store.journal_mode, "schema_revision": head_revision()}
    if as_json:
        emit_json(info)
    else:
        click.echo(f"logbook ready at {store.path} (schema {info['schema_revision']}, {store.journal_mode} journal)")


LIST_PAGE = 50  # entries `logbook list` prints without --limit: a screenful, fast on any logbook

EXAMPLES_HELP = "Print a packaged, commented example entry file (without NAME: list them)."


@click.command(help=EXAMPLES_HELP)
@click.argument("name", required=False)
def example(name: str | None) -> None:
    from importlib import resources

    from logbook.errors import InputError

    folder = resources.files("logbook") / "data"
    found = {p.name.removesuffix(".yaml"): p for p in folder.iterdir() if p.name.endswith(".yaml")}
    if name is None:
        for stem in sorted(found):
            first = found[stem].read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
            click.echo(f"{stem:<16} {first}")
        click.echo("print one with: logbook example NAME > entry.yaml")
        return
    if name not in found:
        raise InputError(f"NAME: no example called {name!r}; expected one of {', '.join(sorted(found))}")
    click.echo(found[name].read_text(encoding="utf-8"), nl=False)


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--register", "do_register", is_flag=True, help="Register (lock) the entry at once.")
@json_option
@click.pass_context
def new(ctx: click.Context, file: Path, do_register: bool, as_json: bool) -> None:
    """Add the hypothesis in FILE (YAML or TOML) as a draft entry."""
    from logbook.entries.registry import create_draft, entry_detail, register
    from logbook.entries.file import load_entry_file

    from logbook.db.paths import write_own_gitignore

    from logbook.db.paths import resolve_db_path

    spec = load_entry_file(file)  # validate before the database is even opened
    for warning in spec.warnings:  # valid, but probably not what was meant
        say(warning, err=True)
    if spec.variance_study:  # the trainer must be able to vary each source (a named trainer is asked)
        from dataclasses import replace

        from logbook.entries.variance_study import check_study

        spec = replace(spec, variance_study=check_study(spec.variance_study, spec.trainer.to_dict(), str(file)))
    fresh = not resolve_db_path(ctx.obj.get("db")).exists()
    store = open_store(ctx, "create")
    if fresh:  # only `init` and `new` create a logbook, and `new` says so
        click.echo(f"logbook: created a new logbook at {store.path}", err=True)
    write_own_gitignore(store.path)
    if do_register and spec.min_effect_pilot:
        from logbook.entries.pilot import check_pilot

        check_pilot(store, spec, label=str(file))  # a pilot without results writes no draft
    entry = create_draft(store, spec)
    if do_register:
        entry = register(store, str(entry.id))
    detail = entry_detail(store, str(entry.id))
    if as_json:
        emit_json(detail)
    else:
        state = f"registered, hash {entry.registration_hash[:12]}" if do_register else "draft"
        say(f"added entry {entry.id}: {entry.slug} ({state})")


@click.command("register")
@click.argument("entry")
@json_option
@click.pass_context
def register_cmd(ctx: click.Context, entry: str, as_json: bool) -> None:
    """Lock ENTRY: record the git state, draw the planned seeds, hash the registered content."""
    from logbook.entries.registry import entry_detail, register

    store = open_store(ctx, "write")
    registered = register(store, entry)
    detail = entry_detail(store, str(registered.id))
    if as_json:
        emit_json(detail)
    else:
        dirty = " (dirty tree: diff recorded)" if registered.git_dirty else ""
        commit = registered.git_commit[:12] if registered.git_commit else "no git repository"
        say(f"registered {registered.slug}: commit {commit}{dirty}, hash {registered.registration_hash}")


@click.command()
@click.argument("entry")
@click.option("--field", "field_name", required=True, help="title, hypothesis, notes, tags, seeds, min_effect, alpha, or arms.NAME")
@click.option("--value", required=True, help="The new value (YAML syntax: 0.02, [a, b], {lr: 0.01}).")
@click.option("--reason", required=True, help="Why the registered plan changes.")
@json_option
@click.pass_context
def amend(ctx: click.Context, entry: str, field_name: str, value: str, reason: str, as_json: bool) -> None:
    """Append a dated amendment to a registered ENTRY."""
    from logbook.db.queries import amendment_dict
    from logbook.entries.registry import amend as do_amend

    store = open_store(ctx, "write")
    amendment = do_amend(store, entry, field_name, value, reason)
    if as_json:
        emit_json(amendment_dict(amendment))
    else:
        say(f"amended {field_name}: {amendment.old_value!r} -> {amendment.new_value!r} ({amendment.reason})")


@click.command()
@click.argument("entry")
@click.option("--reason", required=True, help="Why the entry should not count (a mistake, a duplicate, ...).")
@json_option
@click.pass_context
def withdraw(ctx: click.Context, entry: str, reason: str, as_json: bool) -> None:
    """Withdraw a registered ENTRY: a dated amendment with its reason, never a deletion."""
    from logbook.db.queries import amendment_dict
    from logbook.entries.withdraw import withdraw as do_withdraw

    store = open_store(ctx, "write")
    amendment = do_withdraw(store, entry, reason)
    if as_json:
        emit_json(amendment_dict(amendment))
    else:
        say(f"withdrew {entry} at {amendment_dict(amendment)['at']} ({amendment.reason}); "
            "it stays in the record, out of the default list and the exports' results")


@click.command("list")
@click.option("--verdict", "verdicts", multiple=True, metavar="STATE",
              help="Only entries in this state: positive, negative, inconclusive, unjudged, no-results, draft, "
                   "withdrawn (repeat for any of several).")
@click.option("--tag", "tags", multiple=True, help="Only entries with this tag (repeat: every tag given).")
@click.option("--status", "statuses", multiple=True, help="Only entries with this status: draft, registered, running, "
                                                          "concluded (repeat for any of several).")
@click.option("--search", default="", metavar="TEXT",
              help="Words (all must match title, slug, metric, hypothesis, notes, arm names, tags or trainer) and "
                   "keys tag:X verdict:X status:X metric:X trainer:X withdrawn:yes|any: the app's `/` filter.")
@click.option("--sort", "sort", default="id", metavar="FIELD[:asc|desc]",
              help="id, title, state, effect, seeds, metric, arms, status or activity; effect, seeds and activity "
                   "start descending.")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help=f"At most N entries; 0 for all. Without it the text list shows a page of {LIST_PAGE} (the newest, "
                   "in the default order) and --json shows all.")
@click.option("--all", "show_all", is_flag=True, help="Include withdrawn entries.")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, verdicts: tuple[str, ...], tags: tuple[str, ...], statuses: tuple[str, ...], search: str,
             sort: str, limit: int | None, show_all: bool, as_json: bool) -> None:
    """List entries, filtered and sorted with the terminal app's grammar."""
    from logbook.entries.listing import entry_rows, list_query, newest_ids, select_rows

    query, (key, descending) = list_query(verdicts, tags, statuses, search, sort, show_all)  # refused before opening
    store = open_store(ctx, "read", light=True)  # every read below is db.reads': no SQLAlchemy on a current file
    more = 0
    if limit is None and not as_json:  # a page: the newest in the default order, else the first
        newest_first = key == "id" and not descending
        if newest_first and not query.words and not query.conditions:  # read only the page's entries
            ids, shown = newest_ids(store, LIST_PAGE, withdrawn=query.withdrawn)
            rows = entry_rows(store, ids=ids)
        else:
            rows = select_rows(entry_rows(store), query, key, descending)
            shown = len(rows)
            rows = rows[-LIST_PAGE:] if newest_first else rows[:LIST_PAGE]
        more = shown - len(rows)
    else:
        rows = select_rows(entry_rows(store, run_counts=as_json), query, key, descending, limit or None)
    if as_json:
        emit_json({"entries": [{k: v for k, v in r.items() if k != "haystack"} for r in rows]})
        return
    if not rows:
        if query.words or query.conditions or query.withdrawn != "no":
            click.echo("no entry matches")
        else:
            click.echo("no entries yet: write a hypothesis file and run `logbook new FILE --register`")
        return
    click.echo(f"{'id':>4}  {'state':<12}  {'status':<10}  {'seeds':>9}  {'metric':<14}  title")
    for row in rows:
        arrow = "↓" if row["goal"] == "minimize" else "↑"
        say(
            f"{row['id']:>4}  {row['state']:<12}  {row['status']:<10}  {str(row['done']) + '/' + str(row['planned']):>9}  "
            f"{(row['metric'] + ' ' + arrow):<14}  {row['title']}"
        )
    if more:
        which = "older" if key == "id" and not descending else "more"
        click.echo(f"… {more:,} {which} entries not shown: use --limit N, or --limit 0 for all")


def _show_text(d: dict[str, Any]) -> None:
    arrow = "lower is better" if d["goal"] == "minimize" else "higher is better"
    from logbook.entries.pilot import delta_text

    delta = delta_text(d)
    say(f"{d['title']}  [{d['id']}: {d['slug']}]")
    if d.get("withdrawn"):
        click.echo(click.style(" WITHDRAWN ", fg="black", bg="red", bold=True)
                   + terminal(f" at {d['withdrawn']['at']}: {d['withdrawn']['reason']}"))
    if d.get("retrospective"):
        source = d["import_source"] or {}
        where = source.get("experiment") or source.get("location")
        say(click.style(" RETROSPECTIVE ", fg="black", bg="magenta", bold=True)
            + f" imported from {source.get('kind')} {where} at {source.get('imported_at')}: {d['retrospective_note']}")
        if d["rerun_missing"]:
            say(f"  cannot be audited: {'; '.join(d['rerun_missing'])}")
    say(f"  hypothesis : {d['hypothesis']}")
    say(f"  metric     : {d['metric']} ({arrow}); δ = {delta}; α = {d['alpha']:g}")
    say(f"  seeds      : {d['seeds']} per arm" + (f" {d['planned_seeds']}" if d["planned_seeds"] else ""))
    trainer = d["trainer"].get("name") or (f"command: {d['trainer']['command']}" if d["trainer"].get("command") else "none (imported)")
    say(f"  trainer    : {trainer}")
    for arm in d["arms"]:
        config = json.dumps(arm["config"], sort_keys=True)
        say(f"  arm        : {arm['name']} ({arm['role']}) {config}")
    if d["tags"]:
        say(f"  tags       : {', '.join(d['tags'])}")
    say(f"  state      : {d['state']} (status {d['status']})")
    if d.get("exploratory"):
        say(f"  exploratory: {d['exploratory_reason']}")
    if d.get("post_hoc"):
        late = d["post_hoc"]
        say(f"  post hoc   : {late['label']}: {late['reading']['verdict']} (exploratory, not the entry's verdict)")
    if d["registered_at"]:
        git = d["git"]
        if git["in_repo"]:
            where = f"commit {git['commit'] or '(none yet)'} on {git['branch'] or 'detached HEAD'}, {git['tree']}"
        else:
            where = "outside any git repository"
        check = "verified" if d["registration_verified"] and d["integrity"] == "verified" else "TAMPERED"
        say(f"  registered : {d['registered_at']}, {where}")
        say(f"  hash       : {d['registration_hash']} ({check})")
        say(f"  chain head : {d['chain_head']} ({d['integrity']})")
        for finding in d["integrity_findings"]:
            say(f"  TAMPERED   : {finding['row']}: {finding['field']}: {finding['problem']}")
    else:
        say("  registered : no (draft)")
    for a in d["amendments"]:
        say(f"  amendment  : {a['at']} {a['field']}: {a['old']!r} -> {a['new']!r} ({a['reason']})")
    study = d.get("variance_study") or {}
    if study.get("verdict_holds"):
        say(f"  seeds vary : {', '.join(study['verdict_varies'])} only; {', '.join(study['verdict_holds'])} held at one "
            "fixed value (variance_study.verdict_varies)")
    notes = d.get("studies") or {}
    if notes.get("variance_warning"):
        say(f"  warning    : {notes['variance_warning']}")
    if notes.get("robustness"):
        say(f"  robustness : {notes['robustness']}")
    if d["runs"]:
        say("  runs       : " + ", ".join(f"{n} {s}" for s, n in d["runs"].items())
            + (f" ({d['slurm_requeues']} automatic Slurm requeues)" if d.get("slurm_requeues") else ""))


@click.command()
@click.argument("entry")
@click.option("--diff", "show_diff", is_flag=True,
              help="Print only the uncommitted changes recorded at registration, as a patch for `git apply`.")
@json_option
@click.pass_context
def show(ctx: click.Context, entry: str, show_diff: bool, as_json: bool) -> None:
    """Show one entry: its registration, arms, amendments and runs."""
    from logbook.entries.registry import entry_detail, registered_diff

    store = open_store(ctx, "read")
    if show_diff:
        recorded = registered_diff(store, entry)
        if as_json:
            emit_json(recorded)
            return
        # Byte for byte what was recorded into a pipe or file (`git apply` takes it); on a terminal,
        # control characters in the patch are shown, not obeyed.
        patch = recorded["diff"]
        click.echo(terminal(patch, multiline=True) if sys.stdout.isatty() else patch, nl=False)
        if not recorded["diff"]:
            click.echo(f"{recorded['entry']}: {recorded['tree']} at registration: no patch recorded", err=True)
        if recorded["untracked"]:
            say(f"{recorded['entry']}: not in the patch: {len(recorded['untracked'])} untracked files at "
                       "registration (listed, not recorded): " + ", ".join(recorded["untracked"]), err=True)
        return
    detail = entry_detail(store, entry)
    if detail.get("registered_at"):
        from logbook.entries.studies import verdict_notes
        from logbook.entries.states import verdict_state
        from logbook.entries.verdicts import entry_verdict

        # The verdict's labels (exploratory δ, post hoc reading) and what its studies say about it
        # (the variance warning, the robustness line) belong with the entry; read only.
        judged = entry_verdict(store, entry, cache=False)
        detail = {**detail, "exploratory": judged["exploratory"], "exploratory_reason": judged["exploratory_reason"],
                  "post_hoc": judged["post_hoc"], "state": verdict_state(judged, detail["status"]),
                  "studies": verdict_notes(store, entry)}
    else:
        detail = {**detail, "state": "draft"}
    if as_json:
        emit_json(detail)
    else:
        _show_text(detail)
