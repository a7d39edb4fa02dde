"""The `audit` and `rerun` verbs."""

from __future__ import annotations

import click

from logbook.cli.common import confirm_commands, emit_json, json_option, open_store, say, wait_for_runs, yes_option
from logbook.errors import InputError

OUTCOME_COLOURS = {"replicated": "green", "refuted": "red", "inconclusive": "yellow"}


def _print_audit(report: dict) -> None:
    status = report["outcome"] or report["status"]
    badge = click.style(f" {status.upper()} ", fg="black", bg=OUTCOME_COLOURS.get(status, "white"), bold=True)
    click.echo(f"{badge} audit {report['audit']} of {report['entry']}: {report['seeds_per_arm']} fresh seeds per arm "
               f"at commit {(report['commit'] or 'none')[:12]}")
    click.echo(f"  seeds: {report['seeds_rule']}")
    click.echo(f"  commitment: {report['commitment']}" + (f" (salt {report['salt']})" if report["salt"] else " (seeds revealed when the audit is over)"))
    for problem in report["problems"]:
        click.echo(click.style(f"  PROBLEM: {problem}", fg="red", bold=True))
    for item in report["candidates"]:
        original, audited = item["original"] or {}, item["audit"]
        say(f"  {item['candidate']}: {item['outcome']}")
        say(f"    original: {original.get('verdict')} — {original.get('sentence')}")
        say(f"    audit:    {audited['verdict']} — {audited['sentence']}")
    if report["pending_runs"]:
        click.echo(f"  {report['pending_runs']} audit runs still queued or running")


@click.command()
@click.argument("entry")
@click.option("--seeds", "n_seeds", type=int, help="Fresh seeds per arm (default: power 0.9 against the original effect).")
@click.option("--wait", is_flag=True, help="Stay until the audit's runs end, then report the outcome.")
@click.option("--status", "show", is_flag=True, help="Report the entry's latest audit instead of starting one.")
@click.option("--no-worker", is_flag=True, help="Only queue; do not start a worker.")
@yes_option
@json_option
@click.pass_context
def audit(ctx: click.Context, entry: str, n_seeds: int | None, wait: bool, show: bool, no_worker: bool, yes: bool,
          as_json: bool) -> None:
    """Rerun a registered ENTRY on fresh, committed seeds at its registered commit; does the claim replicate?"""
    from logbook.entries.audit import audit_report, latest_audit_id, start_audit
    from logbook.engine.queue import ensure_worker

    store = open_store(ctx, create=False)
    if show:
        if n_seeds is not None:
            raise InputError("--seeds: expected no seed count with --status")
        audit_id = latest_audit_id(store, entry)
    else:
        started = start_audit(store, entry, n_seeds,
                              confirm=lambda runs: confirm_commands(store, entry, runs=runs, yes=yes))
        audit_id = started["audit"]
        if not no_worker:
            ensure_worker(store)
        if not as_json:
            click.echo(f"audit {audit_id} of {started['entry']}: queued {len(started['runs'])} runs; "
                       f"commitment {started['commitment']}")
        if wait:
            wait_for_runs(store, started["runs"], "audit runs", as_json)
    report = audit_report(store, audit_id)
    if as_json:
        emit_json(report)
    elif show or wait:
        _print_audit(report)
    else:
        click.echo(f"see the outcome with: logbook audit {report['entry']} --status")


@click.command()
@click.argument("target")
@click.option("--check-determinism", "k", type=int, help="TARGET is an entry: rerun K of its runs and report.")
@click.option("--compare", "rerun_id", type=int, help="Compare TARGET (a run) with this existing rerun of it.")
@click.option("--wait", is_flag=True, help="Stay until the reruns end, then compare.")
@click.option("--no-worker", is_flag=True, help="Only queue; do not start a worker.")
@yes_option
@json_option
@click.pass_context
def rerun(ctx: click.Context, target: str, k: int | None, rerun_id: int | None, wait: bool, no_worker: bool, yes: bool,
          as_json: bool) -> None:
    """Rerun run TARGET exactly (same seed, config, commit) and say whether the result is identical."""
    from logbook.entries.audit import compare_runs, determinism_runs, start_rerun
    from logbook.engine.queue import ensure_worker

    store = open_store(ctx, create=False)
    if rerun_id is not None:
        pairs = [(_run_id(target), rerun_id)]
    else:
        from logbook.engine.confirm import entry_of_run

        ref = target if k is not None else entry_of_run(store, _run_id(target))
        if ref is not None:  # a run that does not exist is reported by start_rerun itself
            confirm_commands(store, ref, runs=k if k is not None else 1, yes=yes)
        originals = determinism_runs(store, target, k) if k is not None else [_run_id(target)]
        pairs = [(run_id, start_rerun(store, run_id)) for run_id in originals]
        if not no_worker:
            ensure_worker(store)
        if wait:
            wait_for_runs(store, [new for _, new in pairs], "reruns", as_json)
    reports = [compare_runs(store, a, b) for a, b in pairs]
    summary = {
        "reruns": reports,
        "identical": sum(r["result"] == "bitwise identical" for r in reports),
        "within_tolerance": sum(r["result"] == "within tolerance" for r in reports),
        "different": sum(r["result"] == "different" for r in reports),
        "pending": sum(r["result"] == "pending" for r in reports),
        "deterministic_mode_violated": any(r.get("deterministic_mode_violated") for r in reports),
    }
    if summary["deterministic_mode_violated"]:
        click.echo(click.style("DETERMINISM VIOLATED: runs in deterministic mode gave different results on rerun",
                               fg="red", bold=True), err=True)
    if as_json:
        emit_json(summary if k is not None else {**reports[0], **summary})
        return
    for r in reports:
        detail = ""
        if r.get("first_difference"):
            d = r["first_difference"]
            where = f" at step {d['step']}" if d["step"] is not None else ""
            detail = f"; first difference: {d['kind']} {d['metric']}{where}: {d['original']!r} vs {d['rerun']!r}"
        click.echo(f"run {r['run']} → rerun {r['rerun']}: {r['result']}{detail}")
    if k is not None:
        click.echo(f"{summary['identical']} identical, {summary['within_tolerance']} within tolerance "
                   f"(relative {reports[0].get('tolerance', {}).get('relative')}), {summary['different']} different, "
                   f"{summary['pending']} pending")


def _run_id(text: str) -> int:
    if not text.isdigit():
        raise InputError(f"RUN: expected a run id (a number), got {text!r}; use --check-determinism K for an entry")
    return int(text)
